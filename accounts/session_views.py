"""The API's operator-session endpoints: a dashboard sign-in started from an admin key.

``start-session`` emails the one-time code of the console sign-in to the oversight email;
``verify-session`` exchanges it for the console's own session (an HttpOnly cookie), so a
tool holding the admin key can hand a human a signed-in browser only after that human
read the oversight inbox. The key alone never signs anyone in.

Errors: a wrong or used code is ``validation_error`` (param ``code``); no code waiting is
``not_found`` with resource ``account`` (the catalog has no resource for sessions; the
message says to call start-session); past the code attempt limits (per address and per
sign-in address, see ``accounts.codes``) is ``too_many_attempts``; more than 5 codes asked
in 15 minutes is ``rate_limit_exceeded``.
"""

from __future__ import annotations

from django.contrib.auth import get_user, logout
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Account, Operator
from accounts.sign_in import (
    operator_session_start,
    operator_session_verify,
    session_is_current,
    session_sign_in,
)
from multimail.authentication import ApiPrincipal
from multimail.epoch import epoch_ms
from multimail.ratelimit import client_ip

# The spec's only tier: a console session may do everything the console offers.
MAX_TIER = "medium"


class VerifySessionRequest(serializers.Serializer):
    code = serializers.CharField(max_length=16)


StartedSerializer = inline_serializer(
    "OperatorSessionStarted",
    {"status": serializers.CharField(), "masked_email": serializers.CharField()},
)
VerifiedSerializer = inline_serializer(
    "OperatorSessionVerified",
    {"status": serializers.CharField(), "expires_at": serializers.IntegerField()},
)
EndedSerializer = inline_serializer("OperatorSessionEnded", {"status": serializers.CharField()})
SessionSerializer = inline_serializer(
    "OperatorSession",
    {
        "active": serializers.BooleanField(),
        "expires_at": serializers.IntegerField(allow_null=True),
        "max_tier": serializers.ChoiceField(choices=[MAX_TIER], allow_null=True),
    },
)
EmptyRequest = inline_serializer("OperatorSessionEmpty", {})


def _account(request: Request) -> Account:
    principal = request.user
    assert isinstance(principal, ApiPrincipal)  # ScopePermission let only keys through
    return principal.account


def _expires_ms(request: Request) -> int:
    return epoch_ms(request._request.session.get_expiry_date())


class StartSessionView(APIView):
    required_scopes = {"POST": "admin"}

    @extend_schema(
        operation_id="operator_session_start",
        request=EmptyRequest,
        responses={202: StartedSerializer},
        summary="Email a one-time console sign-in code to the oversight email",
    )
    def post(self, request: Request) -> Response:
        started = operator_session_start(account=_account(request))
        return Response({"status": "code_sent", "masked_email": started.masked_email}, status=202)


class VerifySessionView(APIView):
    required_scopes = {"POST": "admin"}

    @extend_schema(
        operation_id="operator_session_verify",
        request=VerifySessionRequest,
        responses=VerifiedSerializer,
        summary="Exchange the code for an HttpOnly operator-session cookie",
    )
    def post(self, request: Request) -> Response:
        body = VerifySessionRequest(data=request.data)
        body.is_valid(raise_exception=True)
        operator = operator_session_verify(
            account=_account(request),
            code=body.validated_data["code"],
            client_ip=client_ip(request),
        )
        session_sign_in(request._request, operator)
        return Response({"status": "active", "expires_at": _expires_ms(request)})


class EndSessionView(APIView):
    required_scopes = {"POST": "admin"}

    @extend_schema(
        operation_id="operator_session_end",
        request=EmptyRequest,
        responses=EndedSerializer,
        summary="End the operator session and clear its cookie",
    )
    def post(self, request: Request) -> Response:
        logout(request._request)
        return Response({"status": "ended"})


class SessionView(APIView):
    required_scopes = {"GET": "admin"}

    @extend_schema(
        operation_id="operator_session_get",
        responses=SessionSerializer,
        summary="Whether this browser holds an operator session for the key's account",
    )
    def get(self, request: Request) -> Response:
        # DRF puts the API principal on the Django request; the browser's session user is
        # read from the session itself.
        user = get_user(request._request)
        operator = (
            Operator.objects.filter(user_id=user.pk, account=_account(request)).first()
            if user.is_authenticated
            else None
        )
        # "Sign out everywhere" ends this session at its next console request already.
        active = operator is not None and session_is_current(request._request, operator)
        return Response(
            {
                "active": active,
                "expires_at": _expires_ms(request) if active else None,
                "max_tier": MAX_TIER if active else None,
            }
        )
