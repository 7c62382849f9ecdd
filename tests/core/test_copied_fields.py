"""Request bodies validate the same with the shallow field copies (CopiedFieldsMixin) as
with DRF's deep copies, and each serializer's fields are its own."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework import fields, serializers
from rest_framework.utils.formatting import lazy_format

import mailboxes.serializers_outbound
import oversight.serializers
from multimail.serializers import CopiedFieldsMixin

assert mailboxes.serializers_outbound
assert oversight.serializers


def _users(cls: type[Any]) -> list[type[Any]]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_users(sub)]
    return found


USERS = sorted(set(_users(CopiedFieldsMixin)), key=lambda cls: cls.__qualname__)


def _deep_copied(cls: type[Any]) -> type[Any]:
    """``cls`` as DRF alone makes it: its fields deep-copied for each serializer."""
    return type(f"Deep{cls.__name__}", (cls,), {"get_fields": serializers.Serializer.get_fields})


def _plain(value: Any) -> Any:
    """``value`` with DRF's lazily formatted messages as their text and fields among the
    arguments as their repr (both compare by identity)."""
    if isinstance(value, lazy_format):
        return str(value)
    if isinstance(value, fields.Field):
        return repr(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(item) for item in value)
    return value


def _state(field: fields.Field) -> Any:
    """Everything a field holds, but its parent (a copy's parent is its own serializer) and
    its creation number (which orders declared fields in their class, nothing else)."""
    if isinstance(field, serializers.BaseSerializer):
        return (type(field), repr(field))
    state: dict[str, Any] = {"type": type(field)}
    for name, value in vars(field).items():
        if name in ("parent", "_creation_counter"):
            continue
        if isinstance(value, fields.Field):
            value = _state(value)
        elif name == "_validators":
            value = [(type(v), _plain(vars(v))) for v in value]
        state[name] = _plain(value)
    return state


def test_every_user_is_found() -> None:
    names = {cls.__name__ for cls in USERS}
    assert {"SendEmailSerializer", "ReplySerializer", "DecideRequestSerializer"} <= names


@pytest.mark.parametrize("cls", USERS, ids=lambda cls: cls.__name__)
def test_a_copy_holds_what_a_deep_copy_holds(cls: type[Any]) -> None:
    copied, deep = cls().fields, _deep_copied(cls)().fields
    assert list(copied) == list(deep)
    for name in copied:
        assert _state(copied[name]) == _state(deep[name]), name


@pytest.mark.parametrize("cls", USERS, ids=lambda cls: cls.__name__)
def test_each_serializer_has_fields_of_its_own(cls: type[Any]) -> None:
    first, second = cls(), cls()
    for name, field in first.fields.items():
        other = second.fields[name]
        declared = cls._declared_fields[name]
        assert field is not other
        assert field is not declared
        assert field.parent is first
        assert other.parent is second
        child = getattr(field, "child", None)
        if isinstance(child, fields.Field) and not isinstance(field, serializers.BaseSerializer):
            assert child is not other.child
            assert child is not declared.child
            assert child.parent is field
            assert declared.child.parent is declared  # the declared field is untouched
        # One serializer changing its field's validators changes no other.
        before = copy.copy(other.validators)
        field.validators.append(lambda value: None)
        assert other.validators == before
        assert len(declared.validators) == len(before)


_ADDRESSES = st.sampled_from(
    ["lead@example.org", "A.B@example.com", "no-at-sign", "x@", "two@@example.org", ""]
)
_TEXT = st.one_of(st.text(max_size=40), _ADDRESSES, st.sampled_from(["approve", "reject"]))
_ATTACHMENT = {
    "name": _TEXT,
    "content_base64": st.sampled_from(["aGk=", "!!"]),
    "content_type": _TEXT,
}
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), _TEXT)
_VALUES = st.one_of(
    _SCALARS,
    st.lists(st.one_of(_ADDRESSES, _SCALARS), max_size=3),
    st.dictionaries(st.text(max_size=5), _SCALARS, max_size=2),
    st.lists(
        st.fixed_dictionaries(
            {
                "name": _TEXT,
                "content_base64": st.sampled_from(["aGk=", "!!"]),
                "content_type": _TEXT,
            }
        ),
        max_size=2,
    ),
)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_bodies_validate_as_with_deep_copies(data: st.DataObject) -> None:
    cls = data.draw(st.sampled_from(USERS))
    names = sorted(cls._declared_fields)
    body = data.draw(
        st.dictionaries(st.one_of(st.sampled_from(names), st.text(max_size=6)), _VALUES)
    )
    copied, deep = cls(data=body), _deep_copied(cls)(data=body)
    assert copied.is_valid() == deep.is_valid()
    assert copied.errors == deep.errors
    if not copied.errors:
        assert copied.validated_data == deep.validated_data


@pytest.mark.parametrize(
    ("cls", "body"),
    [
        (
            mailboxes.serializers_outbound.SendEmailSerializer,
            {
                "to": ["lead@example.org"],
                "cc": ["A.B@example.com"],
                "subject": "Offer",
                "markdown": "Terms",
                "attachments": [
                    {"name": "a.txt", "content_base64": "aGk=", "content_type": "text/plain"}
                ],
                "idempotency_key": "k1",
            },
        ),
        (mailboxes.serializers_outbound.ReplySerializer, {"markdown": "Thanks", "bcc": []}),
        (
            oversight.serializers.DecideRequestSerializer,
            {"email_ids": ["e1", "e2"], "versions": {"e1": "v"}, "action": "reject"},
        ),
        (
            oversight.serializers.DecideRequestSerializer,
            {"email_id": "e1", "action": "approve", "edits": {"subject": "Better"}},
        ),
    ],
)
def test_valid_bodies_give_the_same_data(cls: type[Any], body: dict[str, Any]) -> None:
    copied, deep = cls(data=body), _deep_copied(cls)(data=body)
    assert copied.is_valid(), copied.errors
    assert deep.is_valid()
    assert copied.validated_data == deep.validated_data
