"""Faster rendering for the read-only serializers on hot paths (lists and single reads),
and cheaper field copies for the request bodies validated on hot paths (send, decide).

DRF renders each field of each row through ``get_attribute`` (source traversal, exception
handling) and the field's ``to_representation``: for a 20-row email list that is a fifth of
the request's CPU, and a ModelSerializer rebuilds its field objects for every instance.
``FastRepresentationMixin`` plans the fields once per class and renders the common field
types inline, with exactly DRF's output. The serializer class stays the single declaration
of the shape, for the OpenAPI schema and for rendering alike, and
``tests/core/test_fast_serializers.py`` checks the output against DRF's own. Use it only on
serializers whose fields do not depend on the instance or the context.

Validating a body starts with DRF deep-copying every declared field for the new serializer:
a deep copy builds each field again from its arguments (deep-copied too, a list field's
child included). For a send that is two thirds of validating its body. ``CopiedFieldsMixin``
copies each declared field shallowly instead, which ``tests/core/test_copied_fields.py``
holds equal to DRF's copies.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, tzinfo
from functools import partial
from typing import Any

from rest_framework import ISO_8601, fields
from rest_framework.serializers import BaseSerializer
from rest_framework.settings import api_settings

Render = Callable[[Any], Any]


def _iso(value: Any, *, zone: tzinfo, fallback: Render) -> Any:
    # DRF's DateTimeField with the ISO 8601 output format and USE_TZ, for aware values.
    if not isinstance(value, datetime) or value.tzinfo is None:
        return fallback(value)
    text = value.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _renderer(field: fields.Field) -> Render | None:
    """How to render one non-None attribute value of ``field`` exactly as DRF would, or None
    when the field type is not one rendered here."""
    kind = type(field)
    if kind is fields.CharField:
        return str
    if kind is fields.IntegerField:
        return int
    if kind in (fields.BooleanField, fields.BigIntegerField):
        return field.to_representation  # pure: it reads neither parent nor context
    if kind is fields.ChoiceField:
        mapping = field.choice_strings_to_values  # type: ignore[attr-defined]
        return lambda value: value if value == "" else mapping.get(str(value), value)
    if kind is fields.DateTimeField:
        output_format = getattr(field, "format", api_settings.DATETIME_FORMAT)
        timestamp: Any = field
        zone = timestamp.timezone if hasattr(field, "timezone") else timestamp.default_timezone()
        if zone is None or not isinstance(output_format, str) or output_format.lower() != ISO_8601:
            return None
        return partial(_iso, zone=zone, fallback=field.to_representation)
    child = getattr(field, "child", None)
    if kind is fields.ListField and type(child) is fields.CharField:
        return lambda items: [None if item is None else str(item) for item in items]
    if kind is fields.DictField and type(child) is fields.CharField:
        return lambda mapping: {
            str(key): None if value is None else str(value) for key, value in mapping.items()
        }
    return None


# (output name, attribute name, renderer) or (output name, None, serializer method name).
Plan = list[tuple[str, str | None, Any]]
_plans: dict[type, Plan | None] = {}


def _plan(serializer: Any) -> Plan | None:
    plan: Plan = []
    for field in serializer._readable_fields:
        if isinstance(field, fields.SerializerMethodField):
            plan.append((str(field.field_name), None, field.method_name))
            continue
        render = _renderer(field)
        if render is None or len(field.source_attrs) != 1:
            return None
        plan.append((str(field.field_name), field.source_attrs[0], render))
    return plan


class FastRepresentationMixin:
    """For read-only serializers rendered on hot paths. The plan is made once per class, so
    rendering builds no field objects at all (ModelSerializer builds its fields anew for
    every instance: a tenth of a single-email read). A class with a field type not rendered
    here falls back to DRF for good."""

    def to_representation(self, instance: Any) -> dict[str, Any]:
        kind = type(self)
        if kind not in _plans:
            _plans[kind] = _plan(self)  # a benign race: every thread builds the same plan
        plan = _plans[kind]
        if plan is None:
            return super().to_representation(instance)  # type: ignore[misc, no-any-return]
        data: dict[str, Any] = {}
        is_dict = isinstance(instance, dict)
        for name, attribute, render in plan:
            if attribute is None:  # a SerializerMethodField
                data[name] = getattr(self, render)(instance)
                continue
            value = instance[attribute] if is_dict else getattr(instance, attribute)
            # As DRF's get_attribute does; callable() first is the same answer (the check
            # starts with it) without a Python call for every plain value of every row.
            if callable(value) and fields.is_simple_callable(value):
                value = value()
            data[name] = None if value is None else render(value)
        return data


class JsonIntegerField(fields.IntegerField):
    """An integer in a JSON body: a JSON number, never a string of digits or a boolean
    (DRF's IntegerField takes "0" and true), so a setting's type on the wire is one."""

    default_error_messages = {"invalid": "A whole JSON number is required, not text."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, str | bool):
            self.fail("invalid")
        return int(super().to_internal_value(data))


def copied_field(declared: fields.Field) -> fields.Field:
    """A copy of a declared field for a new serializer, equal to DRF's deep copy.

    A declared field is never bound or used itself (DRF only binds copies of it), so its
    state is exactly what its ``__init__`` made from its arguments: what a deep copy would
    make again. A shallow copy shares that state, which nothing changes in place, except the
    validators list, which is copied (a serializer may append to its own field's). A list or
    dict field's child was bound to the declared field: its copy is bound to the copy, as
    building the field again would. A nested serializer keeps DRF's deep copy."""
    if isinstance(declared, BaseSerializer):
        return copy.deepcopy(declared)
    # copy.copy, without its generic protocol (a field has a plain __dict__, no slots).
    field = object.__new__(type(declared))
    field.__dict__.update(declared.__dict__)
    state: Any = field  # private state of DRF's fields (django-stubs does not declare it)
    if "_validators" in declared.__dict__:
        state._validators = list(state._validators)
    child = declared.__dict__.get("child")
    if isinstance(child, fields.Field):
        child_copy = state.child = copied_field(child)
        # As the child was before ``bind``: its source is the one it was given.
        child_copy.source = child._kwargs.get("source")  # type: ignore[attr-defined]
        child_copy.bind(field_name="", parent=state)
    return field


class CopiedFieldsMixin:
    """For request-body serializers validated on hot paths: each new serializer gets shallow
    copies of the declared fields (``copied_field``), not DRF's deep copies."""

    _declared_fields: dict[str, fields.Field]

    def get_fields(self) -> dict[str, fields.Field]:
        return {name: copied_field(field) for name, field in self._declared_fields.items()}
