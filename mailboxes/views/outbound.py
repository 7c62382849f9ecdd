"""Sending: send, reply, and edits of scheduled emails. Thin views over services.outbound."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mailboxes.serializers_outbound import (
    IdempotentReplaySerializer,
    ReplySerializer,
    ScheduleResponseSerializer,
    ScheduleUpdateSerializer,
    SendEmailSerializer,
    SendResponseSerializer,
)
from mailboxes.services.outbound.accept import Accepted, OutgoingAttachment, email_accept
from mailboxes.services.outbound.schedule import email_schedule_update
from multimail.authentication import api_principal
from oversight.policy import outbound_decision


def _attachments(data: dict[str, Any]) -> list[OutgoingAttachment]:
    return [
        OutgoingAttachment(
            name=item["name"], content_type=item["content_type"], content=item["content_base64"]
        )
        for item in data.get("attachments", [])
    ]


def _accepted_response(accepted: Accepted) -> Response:
    email = accepted.email
    if accepted.replayed:
        return Response(
            {
                "id": email.pk,
                "status": "already_sent",
                "idempotent": True,
                "thread_id": email.thread_id,
            },
            status=200,
        )
    message = "Email queued for scanning and delivery."
    if email.mailbox.oversight_rules:
        message += (
            " After the scan this mailbox's oversight rules, then its mode, decide whether it "
            "is sent, held for the operator (pending_send_approval) or refused (rejected); the "
            "email's oversight_decision says which. Do not resend it."
        )
    elif outbound_decision(email.mailbox.oversight_mode).held:
        message += (
            " This mailbox is gated: after the scan the email waits for the operator's "
            "approval (pending_send_approval). Do not resend it."
        )
    if email.send_at is not None:
        message += f" It is scheduled for {email.send_at.isoformat().replace('+00:00', 'Z')}."
    return Response(
        {
            "id": email.pk,
            "status": "pending_scan",
            "thread_id": email.thread_id,
            "message": message,
        },
        status=202,
    )


_SEND_RESPONSES = {
    202: SendResponseSerializer,
    200: OpenApiResponse(IdempotentReplaySerializer, "Idempotent replay of an earlier send"),
}


class SendView(APIView):
    required_scopes = {"POST": "send"}

    @extend_schema(
        operation_id="mailboxes_send", request=SendEmailSerializer, responses=_SEND_RESPONSES
    )
    def post(self, request: Request, mailbox_id: str) -> Response:
        serializer = SendEmailSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        accepted = email_accept(
            actor=api_principal(request).actor,
            mailbox_id=mailbox_id,
            to=data["to"],
            cc=data.get("cc", []),
            bcc=data.get("bcc", []),
            subject=data["subject"],
            markdown=data["markdown"],
            attachments=_attachments(data),
            idempotency_key=data.get("idempotency_key") or None,
            send_at=data.get("send_at"),
            gate_timing=data.get("gate_timing"),
        )
        return _accepted_response(accepted)


class ReplyView(APIView):
    required_scopes = {"POST": "send"}

    @extend_schema(
        operation_id="mailboxes_reply", request=ReplySerializer, responses=_SEND_RESPONSES
    )
    def post(self, request: Request, mailbox_id: str, email_id: str) -> Response:
        serializer = ReplySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        accepted = email_accept(
            actor=api_principal(request).actor,
            mailbox_id=mailbox_id,
            reply_to_email_id=email_id,
            cc=data.get("cc", []),
            bcc=data.get("bcc", []),
            markdown=data["markdown"],
            attachments=_attachments(data),
            idempotency_key=data.get("idempotency_key") or None,
        )
        return _accepted_response(accepted)


class ScheduleView(APIView):
    required_scopes = {"PATCH": "send"}

    @extend_schema(
        operation_id="mailboxes_emails_schedule",
        request=ScheduleUpdateSerializer,
        responses=ScheduleResponseSerializer,
    )
    def patch(self, request: Request, mailbox_id: str, email_id: str) -> Response:
        serializer = ScheduleUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        email = email_schedule_update(
            actor=api_principal(request).actor,
            mailbox_id=mailbox_id,
            email_id=email_id,
            changes=dict(serializer.validated_data),
        )
        return Response(
            {
                "id": email.pk,
                "status": email.status,
                "send_at": email.send_at,
                "thread_id": email.thread_id,
            }
        )
