"""HTTP endpoints for signup, activation, the account, API keys, the audit log and export.

Thin: parse with a serializer, call a service or selector, render.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlencode

from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponseRedirect
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services, signup, slugs
from accounts.codes import typed_code
from accounts.filters import AuditEntryFilter
from accounts.models import AuditEntry, Scope
from accounts.serializers import (
    AccountInfoSerializer,
    AccountUpdateSerializer,
    ApiKeyCreatedSerializer,
    ApiKeyCreateSerializer,
    ApiKeyListSerializer,
    ApiKeyUpdatedSerializer,
    ApiKeyUpdateSerializer,
    ApprovalCodeSerializer,
    AuditLogSerializer,
    ChallengeRequestSerializer,
    ChallengeSerializer,
    ConfirmRequestSerializer,
    ConfirmResponseSerializer,
    PendingApprovalSerializer,
    ResendRequestSerializer,
    SignupRequestSerializer,
    SlugCheckSerializer,
    StatusMessageSerializer,
    StatusSerializer,
    parse,
)
from multimail.authentication import api_principal
from multimail.conditional import check_if_match, etag_response
from multimail.errors import ApiError
from multimail.exceptions import request_id_of
from multimail.pagination import cursor_paginate, pagination_parameters
from multimail.ratelimit import client_ip, hit
from oversight import admin_actions
from oversight.admin_actions import PendingApproval, admin_action_run

PENDING = OpenApiResponse(PendingApprovalSerializer, "Operator approval requested (code emailed)")
CHALLENGES_PER_MINUTE = 30


class PublicView(APIView):
    """No API key: signup and activation happen before the account has one."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    throttle_classes: list[Any] = []


# --- Signup and activation --------------------------------------------------------------


class ChallengeView(PublicView):
    @extend_schema(
        operation_id="account_challenge",
        request=ChallengeRequestSerializer,
        responses=ChallengeSerializer,
        auth=[],
    )
    def post(self, request: Request) -> Response:
        parse(ChallengeRequestSerializer, request.data or {})
        limit = hit(
            f"challenge:{client_ip(request)}", limit=CHALLENGES_PER_MINUTE, window_seconds=60
        )
        if not limit.allowed:
            raise ApiError(
                "rate_limit_exceeded",
                f"At most {CHALLENGES_PER_MINUTE} challenges a minute per address. Wait "
                f"{limit.retry_after} s (Retry-After).",
                limit_type="signup",
                headers={"Retry-After": str(limit.retry_after)},
            )
        return Response(signup.challenge_create())


class SlugCheckView(PublicView):
    @extend_schema(operation_id="slug_check", responses=SlugCheckSerializer, auth=[])
    def get(self, request: Request, slug: str) -> Response:
        status = slugs.slug_check(slug=slug)
        return Response(
            {
                "available": status.available,
                "slug": status.slug,
                "reason": status.reason,
                "suggestions": status.suggestions,
                "address_preview": status.address_preview,
            }
        )


def _confirm_page(code: str | None) -> HttpResponseRedirect:
    # The console's confirmation page (a form that POSTs the code); the link in the
    # activation email lands here with the code prefilled.
    query = f"?{urlencode({'code': code})}" if code else ""
    return HttpResponseRedirect(f"/confirm{query}")


class ConfirmCodeRedirectView(PublicView):
    @extend_schema(
        operation_id="confirm_code_redirect",
        responses={302: OpenApiResponse(description="Redirect to /confirm?code=...")},
        auth=[],
    )
    def get(self, request: Request, code: str) -> HttpResponseRedirect:
        return _confirm_page(code)


class ConfirmView(PublicView):
    @extend_schema(
        operation_id="confirm_redirect",
        responses={302: OpenApiResponse(description="Redirect to /confirm")},
        auth=[],
    )
    def get(self, request: Request) -> HttpResponseRedirect:
        return _confirm_page(None)

    @extend_schema(
        operation_id="confirm_account",
        request=ConfirmRequestSerializer,
        responses=ConfirmResponseSerializer,
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = parse(ConfirmRequestSerializer, request.data)
        activation = signup.account_confirm(
            code=data["code"], client_ip=client_ip(request), request_id=request_id_of(request)
        )
        account, mailbox = activation.account, activation.mailbox
        return Response(
            {
                "status": "active",
                "name": account.name,
                "slug": account.slug,
                "oversight_mode": mailbox.oversight_mode
                if mailbox
                else account.default_oversight_mode,
                "api_key": activation.raw_key,
                "mailbox_id": mailbox.pk if mailbox else None,
                "mailbox_address": mailbox.address if mailbox else None,
                "oversight_email": account.oversight_email,
                "use_case": account.use_case or None,
            }
        )


class ResendConfirmationView(PublicView):
    @extend_schema(
        operation_id="resend_confirmation",
        request=ResendRequestSerializer,
        responses=StatusMessageSerializer,
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = parse(ResendRequestSerializer, request.data)
        signup.confirmation_resend(
            oversight_email=data["oversight_email"], request_id=request_id_of(request)
        )
        return Response(
            {
                "status": "confirmation_resent",
                "message": "If this address has an account waiting for activation, a new code "
                "is on its way. Older codes no longer work.",
            }
        )


# --- The account ------------------------------------------------------------------------


class AccountView(APIView):
    """GET the account; POST is signup (public), PATCH/DELETE need admin."""

    required_scopes = {"GET": "read", "PATCH": "admin", "DELETE": "admin"}

    def get_authenticators(self) -> list[Any]:
        if self.request is not None and self.request.method == "POST":
            return []
        return super().get_authenticators()

    def get_throttles(self) -> list[Any]:
        if self.request.method == "POST":
            return []
        return super().get_throttles()

    @extend_schema(operation_id="account_get", responses=AccountInfoSerializer)
    def get(self, request: Request) -> Response:
        return etag_response(request, self._info(request))

    @extend_schema(
        operation_id="account_signup_create",
        request=SignupRequestSerializer,
        responses=StatusMessageSerializer,
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = parse(SignupRequestSerializer, request.data)
        signup.account_signup(
            pow_solution=data["pow_solution"],
            operator_name=data["operator_name"],
            oversight_email=data["oversight_email"],
            slug=data.get("slug") or None,
            physical_address=data.get("physical_address") or "",
            use_case=data.get("use_case") or "",
            oversight_mode=data.get("oversight_mode") or signup.DEFAULT_SIGNUP_MODE,
            attribution=signup.attribution_clean(data.get("attribution")),
            request_id=request_id_of(request),
        )
        return Response({"status": "confirmation_sent", "message": signup.SIGNUP_MESSAGE})

    @extend_schema(
        operation_id="account_update",
        request=AccountUpdateSerializer,
        responses={200: AccountInfoSerializer, 202: PENDING},
    )
    def patch(self, request: Request) -> Response:
        principal = api_principal(request)
        data = parse(AccountUpdateSerializer, request.data)
        approval_code = data.pop("approval_code", None)
        current = self._info(request)
        check_if_match(request, current)
        if not data:  # nothing to change: no approval to ask for
            return etag_response(request, current)
        outcome = admin_action_run(
            actor=principal.actor,
            action=admin_actions.ACCOUNT_UPDATE,
            params=admin_actions.AccountUpdate(changes=cast(services.AccountChanges, data)),
            approval_code=typed_code(approval_code, request),
            request_id=request_id_of(request),
        )
        if isinstance(outcome, PendingApproval):
            return Response(outcome.body, status=202)
        return etag_response(request, selectors.account_info(account=outcome))

    @extend_schema(
        operation_id="account_delete",
        request=ApprovalCodeSerializer,
        responses={200: StatusSerializer, 202: PENDING},
    )
    def delete(self, request: Request) -> Response:
        principal = api_principal(request)
        data = parse(ApprovalCodeSerializer, request.data or {})
        if request.headers.get("If-Match"):
            check_if_match(request, self._info(request))
        outcome = admin_action_run(
            actor=principal.actor,
            action=admin_actions.ACCOUNT_DELETE,
            params=admin_actions.AccountDelete(),
            approval_code=typed_code(
                data.get("approval_code") or request.query_params.get("approval_code"), request
            ),
            request_id=request_id_of(request),
        )
        if isinstance(outcome, PendingApproval):
            return Response(outcome.body, status=202)
        # The account is gone: nothing after the view (usage counting) may write for it.
        request.user = AnonymousUser()
        return Response({"status": "deleted"})

    @staticmethod
    def _info(request: Request) -> dict[str, Any]:
        # GET, PATCH and If-Match checks all hash this same representation, so an ETag
        # from any of them matches the others.
        return selectors.account_info(account=api_principal(request).account)


# --- API keys ---------------------------------------------------------------------------


class ApiKeyListView(APIView):
    required_scopes = {"GET": "admin", "POST": "admin"}

    @extend_schema(
        operation_id="api_keys_list",
        parameters=pagination_parameters(default_limit=50),
        responses=ApiKeyListSerializer,
    )
    def get(self, request: Request) -> Response:
        page = cursor_paginate(
            selectors.api_key_list(account=api_principal(request).account),
            request.query_params,
            default_limit=50,
        )
        return Response(
            {
                "api_keys": [selectors.api_key_info(key=key) for key in page.items],
                "cursor": page.next_cursor,
            }
        )

    @extend_schema(
        operation_id="api_keys_create",
        request=ApiKeyCreateSerializer,
        responses={201: ApiKeyCreatedSerializer, 202: PENDING},
    )
    def post(self, request: Request) -> Response:
        principal = api_principal(request)
        data = parse(ApiKeyCreateSerializer, request.data)
        outcome = admin_action_run(
            actor=principal.actor,
            action=admin_actions.API_KEY_CREATE,
            params=admin_actions.ApiKeyCreate(
                name=data["name"], scopes=data.get("scopes") or [Scope.READ]
            ),
            approval_code=typed_code(data.get("approval_code"), request),
            request_id=request_id_of(request),
        )
        if isinstance(outcome, PendingApproval):
            return Response(outcome.body, status=202)
        key, raw = outcome
        return Response(
            {
                "id": key.pk,
                "api_key": raw,
                "prefix": key.prefix,
                "name": key.name,
                "scopes": key.scopes,
            },
            status=201,
        )


class ApiKeyDetailView(APIView):
    required_scopes = {"PATCH": "admin", "DELETE": "admin"}

    @extend_schema(
        operation_id="api_keys_update",
        request=ApiKeyUpdateSerializer,
        responses={200: ApiKeyUpdatedSerializer, 202: PENDING},
    )
    def patch(self, request: Request, key_id: str) -> Response:
        principal = api_principal(request)
        data = parse(ApiKeyUpdateSerializer, request.data)
        outcome = admin_action_run(
            actor=principal.actor,
            action=admin_actions.API_KEY_UPDATE,
            params=admin_actions.ApiKeyUpdate(
                key_id=key_id, name=data.get("name"), scopes=data.get("scopes")
            ),
            approval_code=typed_code(data.get("approval_code"), request),
            request_id=request_id_of(request),
        )
        if isinstance(outcome, PendingApproval):
            return Response(outcome.body, status=202)
        return Response({"status": "updated", **selectors.api_key_info(key=outcome)})

    @extend_schema(
        operation_id="api_keys_revoke",
        request=ApprovalCodeSerializer,
        responses={200: StatusSerializer, 202: PENDING},
    )
    def delete(self, request: Request, key_id: str) -> Response:
        principal = api_principal(request)
        data = parse(ApprovalCodeSerializer, request.data or {})
        outcome = admin_action_run(
            actor=principal.actor,
            action=admin_actions.API_KEY_REVOKE,
            params=admin_actions.ApiKeyRevoke(key_id=key_id),
            approval_code=typed_code(
                data.get("approval_code") or request.query_params.get("approval_code"), request
            ),
            request_id=request_id_of(request),
        )
        if isinstance(outcome, PendingApproval):
            return Response(outcome.body, status=202)
        return Response({"status": "revoked"})


# --- Audit log and export ---------------------------------------------------------------


class AuditLogView(APIView):
    required_scopes = {"GET": "admin"}
    # The selector applies the filter; these two only document it (multimail.openapi).
    filterset_class = AuditEntryFilter
    queryset = AuditEntry.objects.none()

    @extend_schema(
        operation_id="audit_log",
        parameters=pagination_parameters(default_limit=selectors.AUDIT_PAGE_SIZE),
        responses=AuditLogSerializer,
    )
    def get(self, request: Request) -> Response:
        page = selectors.audit_entry_page(
            account=api_principal(request).account, params=request.query_params
        )
        return Response(
            {
                "entries": [selectors.audit_entry_info(entry=entry) for entry in page.items],
                "cursor": page.next_cursor,
            }
        )


class ExportView(APIView):
    required_scopes = {"GET": "admin"}

    @extend_schema(operation_id="account_export", responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        return Response(
            services.account_export_take(
                actor=api_principal(request).actor, request_id=request_id_of(request)
            )
        )
