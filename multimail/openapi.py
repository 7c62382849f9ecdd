"""Schema additions: list filters from their FilterSet, the error envelope as a component
and on every operation."""

from __future__ import annotations

from typing import Any

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular import openapi

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
