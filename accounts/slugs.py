"""Tenant slugs: their format, the reserved words, availability with suggestions, and the
default mailbox address a slug gives a new account."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings
from django.utils.text import slugify

from accounts.models import Account
from multimail.errors import ApiError

SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
SLUG_MIN_LENGTH = 2
RESERVED_SLUGS = frozenset(
    {
        "abuse", "account", "accounts", "admin", "administrator", "api", "app", "billing",
        "blog", "console", "dashboard", "dev", "docs", "help", "hostmaster", "imap", "info",
        "login", "mail", "mailer-daemon", "mx", "multimail", "noreply", "no-reply", "ops",
        "pop", "postmaster", "root", "security", "signup", "smtp", "staging", "static",
        "status", "support", "system", "webmaster", "www",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SlugStatus:
    slug: str
    available: bool
    reason: str | None  # None, "taken" or "reserved"
    suggestions: list[str]

    @property
    def address_preview(self) -> str:
        return default_mailbox_address(self.slug)


def default_mailbox_address(slug: str) -> str:
    return f"{slug}@{slug}.{settings.MAIL_DOMAIN}"


def slug_from_name(name: str) -> str:
    return slugify(name)[:63].strip("-")


def slug_validate(*, slug: str) -> str:
    clean = slug.strip().lower()
    if len(clean) < SLUG_MIN_LENGTH or not SLUG_PATTERN.match(clean):
        raise ApiError(
            "invalid_parameter",
            f"The slug {slug!r} is not valid. Use 2 to 63 lowercase letters, digits and "
            "hyphens, starting and ending with a letter or digit.",
            param="slug",
        )
    return clean


def slug_suggestions(slug: str) -> list[str]:
    """Up to three free, unreserved slugs close to ``slug``."""
    base = slug[:55].rstrip("-")
    if len(base) < SLUG_MIN_LENGTH:
        base = f"{base}-team" if base else "team"
    candidates = [
        f"{base}-{suffix}" for suffix in ("hq", "mail", "team", "app", "agents", "2", "3", "4")
    ]
    candidates = [c for c in candidates if c not in RESERVED_SLUGS]
    taken = set(Account.objects.filter(slug__in=candidates).values_list("slug", flat=True))
    return [c for c in candidates if c not in taken][:3]


def slug_check(*, slug: str) -> SlugStatus:
    clean = slug_validate(slug=slug)
    if clean in RESERVED_SLUGS:
        return SlugStatus(clean, False, "reserved", slug_suggestions(clean))
    if Account.objects.filter(slug=clean).exists():
        return SlugStatus(clean, False, "taken", slug_suggestions(clean))
    return SlugStatus(clean, True, None, [])


def slug_claimable(*, slug: str) -> str:
    """The slug if a new account may take it, else ``slug_reserved``/``slug_taken``."""
    status = slug_check(slug=slug)
    if status.reason == "reserved":
        raise ApiError(
            "slug_reserved",
            f"The slug {status.slug!r} is reserved. Use one of suggestions, or choose "
            "another operator name or slug.",
            param="slug",
            suggestions=status.suggestions,
        )
    if status.reason == "taken":
        raise ApiError(
            "slug_taken",
            f"The slug {status.slug!r} is taken. Use one of suggestions, or choose another.",
            param="slug",
            suggestions=status.suggestions,
        )
    return status.slug


def signup_slug(*, slug: str | None, operator_name: str) -> str:
    """The slug a signup asks for, or one derived from the operator name; valid, not
    reserved and not taken (the errors carry suggestions)."""
    if slug:
        clean_slug = slug_validate(slug=slug)
    else:
        try:
            clean_slug = slug_validate(slug=slug_from_name(operator_name))
        except ApiError as error:
            error.message = (
                f"No valid slug can be derived from operator_name {operator_name!r}. Send a "
                "slug: 2 to 63 lowercase letters, digits and hyphens."
            )
            raise
    return slug_claimable(slug=clean_slug)
