"""Webhook subscriptions, their deliveries, secret rotation and test events, and the
signing secret of a mailbox's own webhook URLs (admin)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.codes import typed_code
from mailboxes.models import Mailbox, WebhookDelivery, WebhookEvent, WebhookSubscription
from mailboxes.services.mailboxes import mailbox_get
from mailboxes.services.webhooks import (
    mailbox_webhook_secret_rotate,
    subscription_delete,
    subscription_get,
    subscription_rotate_secret,
    subscription_test,
)
from multimail.authentication import api_principal
from multimail.conditional import etag_response
from multimail.exceptions import request_id_of
from multimail.pagination import cursor_paginate, pagination_parameters
from oversight import admin_actions
from oversight.admin_actions import PendingApproval, admin_action_run

LIST_DEFAULT_LIMIT = 50


class WebhookCreateSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2000, help_text="HTTPS URL to receive events")
    # Plain strings so an unknown event gets the service's message listing the valid ones.
    events = serializers.ListField(
        child=serializers.CharField(),
        allow_empty=False,
        help_text=f"Any of: {', '.join(WebhookEvent.values)}",
    )
    mailbox_id = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    approval_code = serializers.CharField(required=False, allow_blank=True)


class WebhookSummarySerializer(serializers.Serializer):
    id = serializers.CharField()
    url = serializers.CharField()
    events = serializers.ListField(child=serializers.CharField())
    mailbox_id = serializers.CharField(allow_null=True)
    is_active = serializers.BooleanField()
    disabled_reason = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["disabled_reason"] = data["disabled_reason"] or None
        return data


class WebhookSubscriptionSerializer(WebhookSummarySerializer):
    signing_secret = serializers.CharField(help_text="HMAC signing secret (whsec_...)")
    previous_secret_expires_at = serializers.DateTimeField(
        allow_null=True, help_text="Until then the previous secret also signs deliveries."
    )


class MailboxWebhookSecretSerializer(serializers.Serializer):
    mailbox_id = serializers.CharField(source="pk")
    signing_secret = serializers.CharField(
        source="webhook_signing_secret",
        help_text="HMAC signing secret (whsec_...) of deliveries to the mailbox's "
        "webhook_url and oversight_webhook_url",
    )
    previous_secret_expires_at = serializers.DateTimeField(
        source="webhook_previous_secret_expires_at",
        allow_null=True,
        help_text="Until then the previous secret also signs deliveries.",
    )

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        mailbox: Mailbox = instance
        if not mailbox.webhook_previous_secret:
            data["previous_secret_expires_at"] = None
        return data


class WebhookListSerializer(serializers.Serializer):
    subscriptions = WebhookSummarySerializer(many=True)
    cursor = serializers.CharField(allow_null=True)


class DeliverySerializer(serializers.Serializer):
    id = serializers.CharField()
    event_type = serializers.CharField()
    url = serializers.CharField()
    status = serializers.ChoiceField(choices=WebhookDelivery.Status.choices)
    attempts = serializers.IntegerField()
    response_status = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    last_attempt_at = serializers.DateTimeField(allow_null=True)
    next_attempt_at = serializers.DateTimeField(allow_null=True)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["last_error"] = data["last_error"] or None
        if instance.status != WebhookDelivery.Status.PENDING:
            data["next_attempt_at"] = None
        return data


class DeliveryListSerializer(serializers.Serializer):
    deliveries = DeliverySerializer(many=True)
    cursor = serializers.CharField(allow_null=True)


DELETED = inline_serializer("WebhookDeleted", {"status": serializers.CharField()})
PENDING_APPROVAL = inline_serializer(
    "WebhookPendingApproval",
    {
        "status": serializers.CharField(),
        "approval_id": serializers.CharField(),
        "message": serializers.CharField(),
    },
)


class WebhookListCreateView(APIView):
    required_scopes = {"GET": "admin", "POST": "admin"}

    @extend_schema(
        operation_id="webhooks_list",
        parameters=pagination_parameters(LIST_DEFAULT_LIMIT),
        responses={200: WebhookListSerializer},
    )
    def get(self, request: Request) -> Response:
        page = cursor_paginate(
            WebhookSubscription.objects.filter(account=api_principal(request).account),
            request.query_params,
            default_limit=LIST_DEFAULT_LIMIT,
        )
        return Response(
            {
                "subscriptions": WebhookSummarySerializer(page.items, many=True).data,
                "cursor": page.next_cursor,
            }
        )

    @extend_schema(
        operation_id="webhooks_create",
        request=WebhookCreateSerializer,
        responses={201: WebhookSubscriptionSerializer, 202: PENDING_APPROVAL},
    )
    def post(self, request: Request) -> Response:
        body = WebhookCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        outcome = admin_action_run(
            actor=api_principal(request).actor,
            action=admin_actions.WEBHOOK_CREATE,
            params=admin_actions.WebhookCreate(
                url=data["url"], events=data["events"], mailbox_id=data.get("mailbox_id")
            ),
            approval_code=typed_code(data.get("approval_code"), request),
            request_id=request_id_of(request),
        )
        if isinstance(outcome, PendingApproval):
            return Response(outcome.body, status=202)
        return Response(WebhookSubscriptionSerializer(outcome).data, status=201)


class WebhookDetailView(APIView):
    required_scopes = {"GET": "admin", "DELETE": "admin"}

    @extend_schema(operation_id="webhooks_retrieve", responses={200: WebhookSubscriptionSerializer})
    def get(self, request: Request, webhook_id: str) -> Response:
        subscription = subscription_get(
            account=api_principal(request).account, subscription_id=webhook_id
        )
        return etag_response(request, WebhookSubscriptionSerializer(subscription).data)

    @extend_schema(operation_id="webhooks_destroy", responses={200: DELETED})
    def delete(self, request: Request, webhook_id: str) -> Response:
        subscription_delete(
            actor=api_principal(request).actor,
            subscription_id=webhook_id,
            request_id=request_id_of(request),
        )
        return Response({"status": "deleted"})


class WebhookRotateSecretView(APIView):
    required_scopes = {"POST": "admin"}

    @extend_schema(
        operation_id="webhooks_rotate_secret",
        request=None,
        responses={200: WebhookSubscriptionSerializer},
    )
    def post(self, request: Request, webhook_id: str) -> Response:
        subscription = subscription_rotate_secret(
            actor=api_principal(request).actor,
            subscription_id=webhook_id,
            request_id=request_id_of(request),
        )
        return Response(WebhookSubscriptionSerializer(subscription).data)


class WebhookTestView(APIView):
    required_scopes = {"POST": "admin"}

    @extend_schema(operation_id="webhooks_test", request=None, responses={202: DeliverySerializer})
    def post(self, request: Request, webhook_id: str) -> Response:
        delivery = subscription_test(actor=api_principal(request).actor, subscription_id=webhook_id)
        return Response(DeliverySerializer(delivery).data, status=202)


class WebhookDeliveryListView(APIView):
    required_scopes = {"GET": "admin"}

    @extend_schema(
        operation_id="webhook_deliveries_list",
        parameters=pagination_parameters(LIST_DEFAULT_LIMIT),
        responses={200: DeliveryListSerializer},
    )
    def get(self, request: Request) -> Response:
        page = cursor_paginate(
            WebhookDelivery.objects.filter(account=api_principal(request).account).defer("payload"),
            request.query_params,
            default_limit=LIST_DEFAULT_LIMIT,
        )
        return Response(
            {
                "deliveries": DeliverySerializer(page.items, many=True).data,
                "cursor": page.next_cursor,
            }
        )


class MailboxWebhookSecretView(APIView):
    required_scopes = {"GET": "admin"}

    @extend_schema(
        operation_id="mailbox_webhook_secret_retrieve",
        responses={200: MailboxWebhookSecretSerializer},
    )
    def get(self, request: Request, mailbox_id: str) -> Response:
        mailbox = mailbox_get(account=api_principal(request).account, mailbox_id=mailbox_id)
        return Response(MailboxWebhookSecretSerializer(mailbox).data)


class MailboxWebhookSecretRotateView(APIView):
    required_scopes = {"POST": "admin"}

    @extend_schema(
        operation_id="mailbox_webhook_secret_rotate",
        request=None,
        responses={200: MailboxWebhookSecretSerializer},
    )
    def post(self, request: Request, mailbox_id: str) -> Response:
        mailbox = mailbox_webhook_secret_rotate(
            actor=api_principal(request).actor,
            mailbox_id=mailbox_id,
            request_id=request_id_of(request),
        )
        return Response(MailboxWebhookSecretSerializer(mailbox).data)
