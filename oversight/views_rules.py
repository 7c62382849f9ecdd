"""``/v1/mailboxes/{id}/oversight-rules``: read the mailbox's rules, or replace them.

A replacement that loosens oversight needs the operator (the admin-action gate); one that
tightens applies at once. Thin: parse, call the gate, render.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.codes import typed_code
from accounts.serializers import PendingApprovalSerializer
from multimail.authentication import api_principal
from multimail.errors import ApiError
from multimail.exceptions import request_id_of
from oversight import admin_actions
from oversight.admin_actions import PendingApproval, admin_action_run
from oversight.rule_changes import mailbox_for_rules
from oversight.serializers_rules import RulesReplaceSerializer, RulesSerializer


class OversightRulesView(APIView):
    required_scopes = {"GET": "read", "PUT": "admin"}

    @extend_schema(
        operation_id="mailboxes_oversight_rules_retrieve",
        responses=RulesSerializer,
        summary="The mailbox's oversight rules, in order",
    )
    def get(self, request: Request, mailbox_id: str) -> Response:
        mailbox = mailbox_for_rules(actor=api_principal(request).actor, mailbox_id=mailbox_id)
        return Response({"rules": mailbox.oversight_rules})

    @extend_schema(
        operation_id="mailboxes_oversight_rules_replace",
        request=RulesReplaceSerializer,
        responses={
            200: RulesSerializer,
            202: OpenApiResponse(
                PendingApprovalSerializer, "The change loosens oversight: the operator must approve"
            ),
        },
        summary="Replace the mailbox's oversight rules",
    )
    def put(self, request: Request, mailbox_id: str) -> Response:
        body = request.data if isinstance(request.data, dict) else None
        if body is None or "rules" not in body:
            raise ApiError("missing_parameter", 'Send {"rules": [...]}.', param="rules")
        outcome = admin_action_run(
            actor=api_principal(request).actor,
            action=admin_actions.MAILBOX_RULES_REPLACE,
            params=admin_actions.MailboxRulesReplace(mailbox_id=mailbox_id, rules=body["rules"]),
            approval_code=typed_code(body.get("approval_code"), request),
            request_id=request_id_of(request),
        )
        if isinstance(outcome, PendingApproval):
            return Response(outcome.body, status=202)
        return Response({"rules": outcome.oversight_rules})
