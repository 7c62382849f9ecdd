"""Mailboxes: list, create (with operator approval for agent keys), read, update,
configure and soft-delete. Thin views: parse, call the mailbox services, render."""

from __future__ import annotations

from typing import cast

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.codes import typed_code
from accounts.serializers import PendingApprovalSerializer, StatusSerializer
from mailboxes.models import Mailbox
from mailboxes.serializers_outbound import (
    MailboxConfigureSerializer,
    MailboxCreateSerializer,
    MailboxListSerializer,
    MailboxSerializer,
    MailboxUpdateSerializer,
    mailbox_representation,
)
from mailboxes.services.mailboxes import MailboxChanges, mailbox_delete, mailbox_get
from multimail.authentication import api_principal
from multimail.conditional import check_if_match, etag_response
from multimail.exceptions import request_id_of
from multimail.pagination import cursor_paginate, pagination_parameters
from oversight import admin_actions
from oversight.admin_actions import PendingApproval, admin_action_run


class MailboxListCreateView(APIView):
    required_scopes = {"GET": "read", "POST": "admin"}

    @extend_schema(
        operation_id="mailboxes_list",
        parameters=pagination_parameters(50),
        responses=MailboxListSerializer,
    )
    def get(self, request: Request) -> Response:
        page = cursor_paginate(
            Mailbox.objects.filter(account=api_principal(request).account, is_active=True),
            request.query_params,
            default_limit=50,
        )
        return Response(
            {
                "mailboxes": [mailbox_representation(item) for item in page.items],
                "cursor": page.next_cursor,
            }
        )

    @extend_schema(
        operation_id="mailboxes_create",
        request=MailboxCreateSerializer,
        responses={
            201: MailboxSerializer,
            202: OpenApiResponse(PendingApprovalSerializer, "The operator must approve"),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = MailboxCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        outcome = admin_action_run(
            actor=api_principal(request).actor,
            action=admin_actions.MAILBOX_CREATE,
            params=admin_actions.MailboxCreate(
                address_local=data["address_local"],
                display_name=data.get("display_name") or "",
                webhook_url=data.get("webhook_url"),
                ai_disclosure=data["ai_disclosure"],
            ),
            approval_code=typed_code(data.get("approval_code"), request),
            request_id=request_id_of(request),
        )
        if isinstance(outcome, PendingApproval):
            return Response(outcome.body, status=202)
        return Response(mailbox_representation(outcome), status=201)


class MailboxDetailView(APIView):
    required_scopes = {"GET": "read", "PATCH": "admin", "DELETE": "admin"}

    @extend_schema(operation_id="mailboxes_retrieve", responses=MailboxSerializer)
    def get(self, request: Request, mailbox_id: str) -> Response:
        mailbox = mailbox_get(account=api_principal(request).account, mailbox_id=mailbox_id)
        return etag_response(request, mailbox_representation(mailbox))

    @extend_schema(
        operation_id="mailboxes_update",
        request=MailboxUpdateSerializer,
        responses={200: StatusSerializer, 202: PendingApprovalSerializer},
    )
    def patch(self, request: Request, mailbox_id: str) -> Response:
        outcome = _update(request, mailbox_id, MailboxUpdateSerializer, "mailbox.updated")
        if isinstance(outcome, PendingApproval):
            return Response(outcome.body, status=202)
        return Response({"status": "updated"})

    @extend_schema(
        operation_id="mailboxes_destroy", request=None, responses={200: StatusSerializer}
    )
    def delete(self, request: Request, mailbox_id: str) -> Response:
        mailbox = mailbox_get(account=api_principal(request).account, mailbox_id=mailbox_id)
        check_if_match(request, mailbox_representation(mailbox))
        mailbox_delete(
            actor=api_principal(request).actor,
            mailbox_id=mailbox_id,
            request_id=request_id_of(request),
        )
        return Response({"status": "deleted"})


class MailboxConfigureView(APIView):
    required_scopes = {"PATCH": "admin"}

    @extend_schema(
        operation_id="mailboxes_configure",
        request=MailboxConfigureSerializer,
        responses={200: MailboxSerializer, 202: PendingApprovalSerializer},
    )
    def patch(self, request: Request, mailbox_id: str) -> Response:
        outcome = _update(request, mailbox_id, MailboxConfigureSerializer, "mailbox.configured")
        if isinstance(outcome, PendingApproval):
            return Response(outcome.body, status=202)
        return Response(mailbox_representation(outcome))


def _update(
    request: Request, mailbox_id: str, serializer_class: type, audit_action: str
) -> Mailbox | PendingApproval:
    mailbox = mailbox_get(account=api_principal(request).account, mailbox_id=mailbox_id)
    check_if_match(request, mailbox_representation(mailbox))
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    approval_code = request.data.get("approval_code") if isinstance(request.data, dict) else None
    return admin_action_run(
        actor=api_principal(request).actor,
        action=admin_actions.MAILBOX_UPDATE,
        params=admin_actions.MailboxUpdate(
            mailbox_id=mailbox_id,
            changes=cast(MailboxChanges, dict(serializer.validated_data)),
            audit_action=audit_action,
        ),
        approval_code=typed_code(approval_code, request),
        request_id=request_id_of(request),
    )
