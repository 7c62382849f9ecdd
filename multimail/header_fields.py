"""The one rule for text that ends up in a mail header, and the serializer field that applies it.

A subject, a display name, an address, an attachment's name or content type: each becomes
(part of) a header line of the message that leaves, or of the operator's notification
about it. A CR or LF there ends the header early (header injection), a NUL or another
control character makes the message unbuildable or read differently by each receiver, and
U+2028/U+2029 are line breaks to Python's own ``str.splitlines``. Such text is refused
when the API accepts it, so nothing stored can later fail to build, or reach the operator
looking different from what is sent.

Every serializer field whose value becomes header text is a ``HeaderTextField`` (or an
``multimail.addresses.AddressField``, which applies this rule first); Django forms use
``header_text_validator``.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

# Cc: C0 and C1 controls (CR, LF, NUL, TAB, ESC, NEL...); Zl/Zp: U+2028 and U+2029.
_REFUSED_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


def header_text_problem(value: str) -> str | None:
    """Why ``value`` cannot go into a header, or None when it can."""
    for char in value:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            return (
                f"contains the control character U+{ord(char):04X}: text that goes into an "
                "email header must be one line, without CR, LF, NUL or other control "
                "characters."
            )
    return None


def header_text_validator(value: str) -> None:
    """The rule as a Django validator, for console and admin forms."""
    problem = header_text_problem(str(value))
    if problem:
        raise DjangoValidationError(problem, code="invalid")


class HeaderTextField(serializers.CharField):
    """A CharField whose value goes into a header. The rule is applied to the value as
    sent, before CharField trims it: a trailing CRLF is refused, not silently cut."""

    def run_validation(self, data: Any = serializers.empty) -> Any:
        if isinstance(data, str):
            problem = header_text_problem(data)
            if problem:
                raise serializers.ValidationError(problem, code="invalid")
        return super().run_validation(data)
