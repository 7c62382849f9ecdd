"""Custom domains (admin): register, list, inspect, delete, verify DNS."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mailboxes.models import Domain
from mailboxes.services.domains import domain_create, domain_delete, domain_get, domain_verify
from multimail.authentication import api_principal
from multimail.conditional import etag_response
from multimail.exceptions import request_id_of
from multimail.pagination import cursor_paginate, pagination_parameters

LIST_DEFAULT_LIMIT = 50


class DomainCreateSerializer(serializers.Serializer):
    domain = serializers.CharField(max_length=253)


class DomainVerifyResultSerializer(serializers.Serializer):
    id = serializers.CharField()
    domain = serializers.CharField()
    status = serializers.ChoiceField(choices=Domain.Status.choices)
    dkim_verified = serializers.BooleanField()
    spf_verified = serializers.BooleanField()
    mx_verified = serializers.BooleanField()
    return_path_verified = serializers.BooleanField()
    verified_at = serializers.DateTimeField(allow_null=True)


class DomainSerializer(DomainVerifyResultSerializer):
    dns_records = serializers.JSONField(
        allow_null=True,
        help_text="dkim, spf, mx, return_path: each {type, name, value[, priority]} to publish",
    )
    created_at = serializers.DateTimeField()
    last_checked_at = serializers.DateTimeField(allow_null=True)


class DomainListSerializer(serializers.Serializer):
    domains = DomainSerializer(many=True)
    cursor = serializers.CharField(allow_null=True)


DELETED = inline_serializer("DomainDeleted", {"status": serializers.CharField()})


class DomainListCreateView(APIView):
    required_scopes = {"GET": "admin", "POST": "admin"}

    @extend_schema(
        operation_id="domains_list",
        parameters=pagination_parameters(LIST_DEFAULT_LIMIT),
        responses={200: DomainListSerializer},
    )
    def get(self, request: Request) -> Response:
        page = cursor_paginate(
            Domain.objects.filter(account=api_principal(request).account),
            request.query_params,
            default_limit=LIST_DEFAULT_LIMIT,
        )
        return Response(
            {"domains": DomainSerializer(page.items, many=True).data, "cursor": page.next_cursor}
        )

    @extend_schema(
        operation_id="domains_create",
        request=DomainCreateSerializer,
        responses={201: DomainSerializer},
    )
    def post(self, request: Request) -> Response:
        body = DomainCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        domain = domain_create(
            actor=api_principal(request).actor,
            domain=body.validated_data["domain"],
            request_id=request_id_of(request),
        )
        return Response(DomainSerializer(domain).data, status=201)


class DomainDetailView(APIView):
    required_scopes = {"GET": "admin", "DELETE": "admin"}

    @extend_schema(operation_id="domains_retrieve", responses={200: DomainSerializer})
    def get(self, request: Request, domain_id: str) -> Response:
        domain = domain_get(account=api_principal(request).account, domain_id=domain_id)
        return etag_response(request, DomainSerializer(domain).data)

    @extend_schema(operation_id="domains_destroy", responses={200: DELETED})
    def delete(self, request: Request, domain_id: str) -> Response:
        domain_delete(
            actor=api_principal(request).actor,
            domain_id=domain_id,
            request_id=request_id_of(request),
        )
        return Response({"status": "deleted"})


class DomainVerifyView(APIView):
    required_scopes = {"POST": "admin"}

    @extend_schema(
        operation_id="domains_verify", request=None, responses={200: DomainVerifyResultSerializer}
    )
    def post(self, request: Request, domain_id: str) -> Response:
        domain = domain_verify(actor=api_principal(request).actor, domain_id=domain_id)
        return Response(DomainVerifyResultSerializer(domain).data)
