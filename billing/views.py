"""Billing and usage endpoints. Thin: parse, call a service or selector, render."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.codes import typed_code
from accounts.serializers import PendingApprovalSerializer
from accounts.signup import attribution_clean
from billing import selectors
from billing.serializers import (
    CancelRequestSerializer,
    CancelResponseSerializer,
    CheckoutRequestSerializer,
    CheckoutResponseSerializer,
    PortalRequestSerializer,
    PortalResponseSerializer,
    PricingCheckoutRequestSerializer,
    PricingCheckoutResponseSerializer,
    SessionKeyQuerySerializer,
    SessionKeyResponseSerializer,
    StripeWebhookResponseSerializer,
    UsageDailySerializer,
    UsageQuerySerializer,
    UsageSummarySerializer,
)
from billing.services import checkout, events, pricing
from multimail.authentication import api_principal
from multimail.errors import ApiError
from multimail.exceptions import request_id_of
from multimail.ratelimit import client_ip, hit
from oversight import admin_actions
from oversight.admin_actions import PendingApproval, admin_action_run

# Each pricing checkout creates an account and a Stripe customer: cap them per address.
PRICING_CHECKOUTS_PER_HOUR = 10


def _parse(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class PublicView(APIView):
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    throttle_classes: list[Any] = []


class CheckoutView(APIView):
    required_scopes = {"POST": "admin"}

    @extend_schema(
        operation_id="billing_checkout",
        request=CheckoutRequestSerializer,
        responses=CheckoutResponseSerializer,
    )
    def post(self, request: Request) -> Response:
        data = _parse(CheckoutRequestSerializer, request.data)
        result = checkout.checkout_start(
            account=api_principal(request).account,
            plan=data["plan"],
            interval=data["interval"],
            success_url=data.get("success_url"),
            cancel_url=data.get("cancel_url"),
            request_key=request.headers.get("Idempotency-Key"),
        )
        return Response(result)


class PortalView(APIView):
    required_scopes = {"POST": "admin"}

    @extend_schema(
        operation_id="billing_portal",
        request=PortalRequestSerializer,
        responses=PortalResponseSerializer,
    )
    def post(self, request: Request) -> Response:
        data = _parse(PortalRequestSerializer, request.data)
        url = checkout.portal_session_create(
            account=api_principal(request).account, return_url=data.get("return_url")
        )
        return Response({"portal_url": url})


class CancelView(APIView):
    required_scopes = {"POST": "admin"}

    @extend_schema(
        operation_id="billing_cancel",
        request=CancelRequestSerializer,
        responses={
            200: CancelResponseSerializer,
            202: OpenApiResponse(
                PendingApprovalSerializer, "Operator approval requested (code emailed)"
            ),
        },
    )
    def post(self, request: Request) -> Response:
        data = _parse(CancelRequestSerializer, request.data or {})
        outcome = admin_action_run(
            actor=api_principal(request).actor,
            action=admin_actions.BILLING_CANCEL,
            params=admin_actions.BillingCancel(),
            approval_code=typed_code(data.get("approval_code"), request),
            request_id=request_id_of(request),
        )
        if isinstance(outcome, PendingApproval):
            return Response(outcome.body, status=202)
        return Response(outcome)


class PricingCheckoutView(PublicView):
    @extend_schema(
        operation_id="billing_pricing_checkout",
        request=PricingCheckoutRequestSerializer,
        responses=PricingCheckoutResponseSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="Replays the first answer for 24 h; forwarded to Stripe.",
            )
        ],
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = _parse(PricingCheckoutRequestSerializer, request.data)
        limit = hit(
            f"pricing-checkout:{client_ip(request)}",
            limit=PRICING_CHECKOUTS_PER_HOUR,
            window_seconds=3600,
        )
        if not limit.allowed:
            raise ApiError(
                "rate_limit_exceeded",
                f"At most {PRICING_CHECKOUTS_PER_HOUR} pricing checkouts an hour from one "
                f"address. Wait {limit.retry_after} s (Retry-After).",
                limit_type="pricing_checkout",
                headers={"Retry-After": str(limit.retry_after)},
            )
        result = pricing.pricing_checkout_start(
            operator_name=data["operator_name"],
            oversight_email=data["oversight_email"],
            plan=data["plan"],
            interval=data["interval"],
            oversight_mode=data["oversight_mode"],
            use_case=data.get("use_case", ""),
            slug=data.get("slug"),
            success_url=data.get("success_url"),
            cancel_url=data.get("cancel_url"),
            attribution=attribution_clean(data.get("attribution")),
            request_key=request.headers.get("Idempotency-Key"),
            request_id=request_id_of(request),
        )
        return Response(result)


class SessionKeyView(PublicView):
    @extend_schema(
        operation_id="billing_session_key",
        parameters=[SessionKeyQuerySerializer],
        responses=SessionKeyResponseSerializer,
        auth=[],
    )
    def get(self, request: Request) -> Response:
        data = _parse(SessionKeyQuerySerializer, request.query_params)
        return Response(pricing.session_key_claim(session_id=data["session_id"]))


class StripeWebhookView(PublicView):
    @extend_schema(
        operation_id="billing_stripe_webhook",
        request=OpenApiTypes.OBJECT,
        responses=StripeWebhookResponseSerializer,
        parameters=[
            OpenApiParameter(
                "Stripe-Signature", OpenApiTypes.STR, OpenApiParameter.HEADER, required=True
            )
        ],
        auth=[],
    )
    def post(self, request: Request) -> Response:
        # The signature covers the raw bytes: never re-serialize the parsed body.
        result = events.stripe_webhook_receive(
            payload=request.body, signature=request.headers.get("Stripe-Signature")
        )
        return Response(result)


class UsageView(APIView):
    required_scopes = {"GET": "read"}
    # Its answer counts API calls: its own is counted after it answers (billing.usage).
    reports_api_calls = True

    @extend_schema(
        operation_id="usage",
        parameters=[UsageQuerySerializer],
        responses=PolymorphicProxySerializer(
            component_name="Usage",
            serializers=[UsageSummarySerializer, UsageDailySerializer],
            resource_type_field_name=None,
        ),
    )
    def get(self, request: Request) -> Response:
        data = _parse(UsageQuerySerializer, request.query_params)
        account = api_principal(request).account
        period = data.get("period", "current")
        start_ms, end_ms = selectors.usage_window(
            account=account, period=period, start_ms=data.get("from"), end_ms=data.get("to")
        )
        if data.get("breakdown") == "daily" or period == "daily":
            return Response(
                selectors.usage_daily(account=account, start_ms=start_ms, end_ms=end_ms)
            )
        return Response(selectors.usage_summary(account=account, start_ms=start_ms, end_ms=end_ms))
