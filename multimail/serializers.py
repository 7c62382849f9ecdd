"""Faster rendering for the read-only serializers on hot paths (lists and single reads).

DRF renders each field of each row through ``get_attribute`` (source traversal, exception
handling) and the field's ``to_representation``: for a 20-row email list that is a fifth of
the request's CPU. ``FastRepresentationMixin`` plans the fields once per serializer
instance (a list's child is one instance) and renders the common field types inline, with
exactly DRF's output; every other field goes through DRF unchanged. The serializer class
stays the single declaration of the shape, for the OpenAPI schema and for rendering alike,
and ``tests/core/test_fast_serializers.py`` checks the output against DRF's own.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from functools import cached_property, partial
from typing import Any

from rest_framework import ISO_8601, fields
from rest_framework.relations import PKOnlyObject
from rest_framework.serializers import BaseSerializer
from rest_framework.settings import api_settings

Render = Callable[[Any], Any]


def _iso(value: Any, *, zone: tzinfo, fallback: Render) -> Any:
    # DRF's DateTimeField with the ISO 8601 output format and USE_TZ, for aware values.
    if not isinstance(value, datetime) or value.tzinfo is None:
        return fallback(value)
    text = value.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _renderer(field: fields.Field) -> Render:
    """How to render one non-None attribute value of ``field``, as DRF would."""
    kind = type(field)
    if kind is fields.CharField:
        return str
    if kind is fields.IntegerField:
        return int
    if kind is fields.BooleanField:
        return field.to_representation
    if kind is fields.ChoiceField:
        mapping = field.choice_strings_to_values  # type: ignore[attr-defined]
        return lambda value: value if value == "" else mapping.get(str(value), value)
    if kind is fields.DateTimeField:
        output_format = getattr(field, "format", api_settings.DATETIME_FORMAT)
        timestamp: Any = field
        zone = timestamp.timezone if hasattr(field, "timezone") else timestamp.default_timezone()
        if zone is None or not isinstance(output_format, str) or output_format.lower() != ISO_8601:
            return field.to_representation
        return partial(_iso, zone=zone, fallback=field.to_representation)
    if kind is fields.ListField and type(field.child) is fields.CharField:  # type: ignore[attr-defined]
        return lambda items: [None if item is None else str(item) for item in items]
    return field.to_representation


class FastRepresentationMixin:
    """For read-only ``Serializer``/``ModelSerializer`` classes rendered on hot paths."""

    @cached_property
    def _render_plan(self) -> list[tuple[str, Callable[[Any], Any], Render, bool]]:
        serializer: Any = self
        plan = []
        for field in serializer._readable_fields:
            attrs = field.source_attrs
            simple = len(attrs) == 1 and not isinstance(field, BaseSerializer)
            getter = _attribute_getter(attrs[0]) if simple else field.get_attribute
            render = _renderer(field) if simple else field.to_representation
            plan.append((field.field_name, getter, render, simple))
        return plan

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name, get, render, simple in self._render_plan:
            value = get(instance)
            if simple and fields.is_simple_callable(value):  # as DRF's get_attribute does
                value = value()
            check = value.pk if isinstance(value, PKOnlyObject) else value
            data[name] = None if check is None else render(value)
        return data


def _attribute_getter(name: str) -> Callable[[Any], Any]:
    def get(instance: Any) -> Any:
        if isinstance(instance, dict):
            return instance[name]
        return getattr(instance, name)

    return get
