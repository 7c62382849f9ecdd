"""The one judge of an email address's syntax: the ``email-validator`` library.

Every address the service accepts (recipients, a mailbox's automatic Cc/Bcc, the
oversight email, an invited operator, a contact, signup) goes through ``address_problem``,
by ``AddressField`` in the API serializers or ``address_validator`` in forms. Headers read
from received mail are parsed with the standard library (``email.utils``); that parser is
never used to judge what a client sent.

The rules, stricter than RFC 5322 on purpose:
- the header rule first (``multimail.header_fields``): no control characters at all;
- a bare address (no display name), an ASCII local part (SMTPUTF8 is not offered), no
  quoted local part and no domain literal. A quoted local part with escapes, such as
  ``"a\\r\\nb"@example.org``, is refused: the mail stack would send it as another address;
- syntax only: no DNS lookup (deliverability is the receiving server's answer).

The address is kept exactly as sent (trimmed): what the agent wrote is what goes out.
"""

from __future__ import annotations

from typing import Any

import email_validator
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import EmailValidator
from email_validator import EmailNotValidError, validate_email
from rest_framework import serializers

from multimail.header_fields import header_text_problem


def _allow_own_mail_domain() -> None:
    # The library refuses special-use names (.localhost, .test...). A development server's
    # mail domain may be one (the default is multimail.localhost): its mailboxes must stay
    # addressable, so the name it lives under is taken off the list, as the library's
    # documentation describes. A production MAIL_DOMAIN is a real domain: nothing changes.
    mail_domain = settings.MAIL_DOMAIN.lower()
    for name in list(email_validator.SPECIAL_USE_DOMAIN_NAMES):
        if mail_domain == name or mail_domain.endswith(f".{name}"):
            email_validator.SPECIAL_USE_DOMAIN_NAMES.remove(name)


_allow_own_mail_domain()


def address_problem(value: str) -> str | None:
    """Why ``value`` is not an address this service accepts, or None when it is."""
    problem = header_text_problem(value)
    if problem:
        return problem
    try:
        validate_email(
            value,
            check_deliverability=False,
            allow_smtputf8=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
            allow_display_name=False,
            allow_empty_local=False,
        )
    except EmailNotValidError as error:
        return f"is not a valid email address: {error}"
    return None


def address_validator(value: str) -> None:
    """``address_problem`` as a Django validator, for console and admin forms."""
    problem = address_problem(str(value))
    if problem:
        raise DjangoValidationError(f"Enter a valid email address: it {problem}", code="invalid")


class AddressField(serializers.EmailField):
    """An email address judged by ``address_problem`` (DRF's own regex is dropped). It stays
    an EmailField so the schema keeps ``format: email``."""

    default_error_messages = {"invalid": "Enter a valid email address."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 320)
        super().__init__(**kwargs)
        self.validators = [v for v in self.validators if not isinstance(v, EmailValidator)]

    def run_validation(self, data: Any = serializers.empty) -> Any:
        # Before CharField trims: a trailing CRLF is refused, not silently cut.
        if isinstance(data, str) and (problem := header_text_problem(data)):
            raise serializers.ValidationError(problem, code="invalid")
        value = super().run_validation(data)
        if isinstance(value, str) and value and (problem := address_problem(value)):
            raise serializers.ValidationError(problem, code="invalid")
        return value
