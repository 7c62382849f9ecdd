"""Mailboxes: list, create (with operator approval for agent keys), read, update,
configure and soft-delete. Thin views: parse, call the mailbox services, render."""

from __future__ import annotations

from typing import Any, cast

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.approvals import admin_action_gate
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
from mailboxes.services.mailboxes import (
    mailbox_create,
    mailbox_create_check,
    mailbox_delete,
    mailbox_get,
    mailbox_update,
)
from multimail.authentication import ApiPrincipal
from multimail.conditional import check_if_match, etag_response
from multimail.exceptions import request_id_of
from multimail.pagination import cursor_paginate, pagination_parameters


def _principal(request: Request) -> ApiPrincipal:
    # The scope permission has authenticated the key before any handler runs.
    return cast(ApiPrincipal, request.user)


# Where copies of the mailbox's mail and its events go: changed with an agent's key they
# would let it send mail elsewhere quietly, so they need the operator's approval code (as
# creating a webhook does).
_GATED_FIELDS = ("auto_cc", "auto_bcc", "webhook_url", "oversight_webhook_url")


def _gate_routing_changes(
    request: Request, mailbox: Mailbox, changes: dict[str, Any], approval_code: str | None
) -> None:
    if not any(
        field in changes and changes[field] != getattr(mailbox, field) for field in _GATED_FIELDS
    ):
        return
    admin_action_gate(
        actor=_principal(request).actor,
        action="mailbox.update",
        params={"mailbox_id": mailbox.pk, "changes": changes},
        summary=f"change where copies and events of {mailbox.address} go",
        approval_code=approval_code,
        request_id=request_id_of(request),
    )


class MailboxListCreateView(APIView):
    required_scopes = {"GET": "read", "POST": "admin"}

    @extend_schema(
        operation_id="mailboxes_list",
        parameters=pagination_parameters(50),
        responses=MailboxListSerializer,
    )
    def get(self, request: Request) -> Response:
        page = cursor_paginate(
            Mailbox.objects.filter(account=_principal(request).account, is_active=True),
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
        params = {
            "address_local": data["address_local"],
            "display_name": data.get("display_name") or "",
            "webhook_url": data.get("webhook_url"),
            "ai_disclosure": data["ai_disclosure"],
        }
        # Refuse what cannot succeed before the operator is asked to approve it.
        address = mailbox_create_check(
            account=_principal(request).account, address_local=params["address_local"]
        )
        admin_action_gate(
            actor=_principal(request).actor,
            action="mailbox.create",
            params=params,
            summary=f"create the mailbox {address}",
            approval_code=data.get("approval_code") or None,
            request_id=request_id_of(request),
        )
        mailbox = mailbox_create(
            actor=_principal(request).actor, request_id=request_id_of(request), **params
        )
        return Response(mailbox_representation(mailbox), status=201)


class MailboxDetailView(APIView):
    required_scopes = {"GET": "read", "PATCH": "admin", "DELETE": "admin"}

    @extend_schema(operation_id="mailboxes_retrieve", responses=MailboxSerializer)
    def get(self, request: Request, mailbox_id: str) -> Response:
        mailbox = mailbox_get(account=_principal(request).account, mailbox_id=mailbox_id)
        return etag_response(request, mailbox_representation(mailbox))

    @extend_schema(
        operation_id="mailboxes_update",
        request=MailboxUpdateSerializer,
        responses={200: StatusSerializer, 202: PendingApprovalSerializer},
    )
    def patch(self, request: Request, mailbox_id: str) -> Response:
        _update(request, mailbox_id, MailboxUpdateSerializer, "mailbox.updated")
        return Response({"status": "updated"})

    @extend_schema(operation_id="mailboxes_destroy", request=None, responses=StatusSerializer)
    def delete(self, request: Request, mailbox_id: str) -> Response:
        mailbox = mailbox_get(account=_principal(request).account, mailbox_id=mailbox_id)
        check_if_match(request, mailbox_representation(mailbox))
        mailbox_delete(
            actor=_principal(request).actor,
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
        mailbox = _update(request, mailbox_id, MailboxConfigureSerializer, "mailbox.configured")
        return Response(mailbox_representation(mailbox))


def _update(request: Request, mailbox_id: str, serializer_class: type, action: str) -> Mailbox:
    mailbox = mailbox_get(account=_principal(request).account, mailbox_id=mailbox_id)
    check_if_match(request, mailbox_representation(mailbox))
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    changes = dict(serializer.validated_data)
    approval_code = request.data.get("approval_code") if isinstance(request.data, dict) else None
    _gate_routing_changes(request, mailbox, changes, approval_code or None)
    return mailbox_update(
        actor=_principal(request).actor,
        mailbox_id=mailbox_id,
        changes=changes,
        action=action,
        request_id=request_id_of(request),
    )
