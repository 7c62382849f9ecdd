"""Schema additions: list filters from their FilterSet, array and body bounds the server
enforces, the error envelope as a component and on every operation."""

from __future__ import annotations

from typing import Any

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular import openapi
from rest_framework import serializers

from multimail.errors import REGISTRY


class AutoSchema(openapi.AutoSchema):
    """Documents the query parameters of a GET view's ``filterset_class``.

    The list endpoints are APIViews answering ``{items, cursor}`` through a selector that
    applies the FilterSet itself; spectacular does not take them for list views, so it would
    not look at their filters. django-filter's extension then needs the view's ``queryset``
    for the model.
    """

    def get_filter_backends(self) -> list[Any]:
        if self.method == "GET" and getattr(self.view, "filterset_class", None) is not None:
            return [DjangoFilterBackend]
        return super().get_filter_backends()

    def _map_serializer_field(
        self, field: Any, direction: str, bypass_extensions: bool = False
    ) -> Any:
        """Arrays carry the bounds the server enforces: spectacular maps a ListField's
        ``min_length``/``max_length`` but not ``allow_empty=False``, and neither for a
        nested ``many=True`` serializer."""
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if not isinstance(field, serializers.ListField | serializers.ListSerializer):
            return schema
        if not isinstance(schema, dict) or schema.get("type") != "array":
            return schema
        # Both classes take min_length, max_length and allow_empty (DRF's stubs lag).
        minimum = getattr(field, "min_length", None) or (0 if field.allow_empty else 1)
        if minimum:
            schema["minItems"] = max(minimum, schema.get("minItems", 0))
        maximum = getattr(field, "max_length", None)
        if maximum is not None:
            schema.setdefault("maxItems", maximum)
        return schema

    def _map_basic_serializer(self, serializer: Any, direction: str) -> Any:
        """A serializer that refuses an empty body says so with ``min_fields``."""
        schema = super()._map_basic_serializer(serializer, direction)
        min_fields = getattr(serializer, "min_fields", 0)
        if min_fields:
            schema["minProperties"] = min_fields
        return schema


ERROR_ENVELOPE = {
    "type": "object",
    "required": ["ok", "error", "meta"],
    "properties": {
        "ok": {"type": "boolean", "enum": [False]},
        "error": {
            "type": "object",
            "required": ["code", "message", "doc_url", "retryable"],
            "properties": {
                "code": {"type": "string", "enum": sorted(REGISTRY)},
                "message": {"type": "string"},
                "param": {"type": "string"},
                "doc_url": {"type": "string", "format": "uri"},
                "retryable": {"type": "boolean"},
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "field": {"type": "string"},
                            "code": {"type": "string"},
                            "message": {"type": "string"},
                        },
                    },
                },
            },
            "additionalProperties": True,
        },
        "meta": {
            "type": "object",
            "required": ["request_id"],
            "properties": {"request_id": {"type": "string"}},
        },
    },
}


def require_non_empty_bodies(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """A request body whose schema needs at least one property cannot be left out: mark
    the body required (spectacular does so only for schemas with required fields)."""
    schemas = result.get("components", {}).get("schemas", {})
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            body = operation.get("requestBody") if isinstance(operation, dict) else None
            if not body:
                continue
            for media in body.get("content", {}).values():
                ref = media.get("schema", {}).get("$ref", "")
                if schemas.get(ref.rsplit("/", 1)[-1], {}).get("minProperties"):
                    body["required"] = True
    return result


def add_error_responses(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Every operation may answer the envelope with any 4xx/5xx status."""
    components = result.setdefault("components", {})
    components.setdefault("schemas", {})["ErrorEnvelope"] = ERROR_ENVELOPE
    ref = {"$ref": "#/components/schemas/ErrorEnvelope"}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status in ("4XX", "5XX"):
                operation["responses"].setdefault(
                    status,
                    {
                        "description": "Error envelope (see /docs/errors)",
                        "content": {"application/json": {"schema": ref}},
                    },
                )
    return result
