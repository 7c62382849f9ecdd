"""The operator is a human outside every agent's reach: no oversight address on a domain
this server hosts mail for.

An oversight address (or an invited operator's) on a hosted domain is a mailbox an agent
may read: that agent would receive its own activation code, every approval link and every
notification about its mail. Hosted means the server's mail domain and its tenant
subdomains (``<slug>.MAIL_DOMAIN``), and every custom domain a tenant verified or has
mailboxes on. A domain a tenant only added, unverified, is not hosted: otherwise anyone
could block signups from a public provider by adding its domain.

One rule, three shapes: ``oversight_address_problem`` (forms), ``oversight_address_ensure``
(services: the catalog error) and ``OversightAddressField`` (API serializers).
"""

from __future__ import annotations

import contextlib
from typing import Any

from django.conf import settings
from django.db.models import Q
from rest_framework import serializers

from mailboxes.models import Domain
from multimail.addresses import AddressField
from multimail.errors import ApiError


def _hosted_domain(address: str) -> str | None:
    """The hosted domain ``address`` is on, or None."""
    domain = address.strip().rpartition("@")[2].lower().rstrip(".")
    # Custom domains are stored in ASCII: an IDN address is compared in ASCII (a name that
    # is not valid IDNA is compared as it is).
    with contextlib.suppress(UnicodeError):
        domain = domain.encode("idna").decode("ascii")
    mail_domain = settings.MAIL_DOMAIN.lower()
    if domain == mail_domain or domain.endswith(f".{mail_domain}"):
        return domain
    hosted = Domain.objects.filter(domain=domain).filter(
        Q(status=Domain.Status.ACTIVE) | Q(mailboxes__isnull=False)
    )
    return domain if hosted.exists() else None


def oversight_address_problem(address: str) -> str | None:
    """Why ``address`` cannot oversee an account, or None when it can."""
    domain = _hosted_domain(address)
    if domain is None:
        return None
    return (
        f"{address.strip()} is on {domain}, a domain this server hosts mailboxes on: an agent "
        "could read it, and approve its own mail. Use an address the operator reads outside "
        "MultiMail."
    )


def oversight_address_ensure(address: str, *, param: str = "oversight_email") -> None:
    """``oversight_address_problem`` as the catalog error, for services."""
    problem = oversight_address_problem(address)
    if problem:
        raise ApiError("validation_error", problem, param=param)


class OversightAddressField(AddressField):
    """An address that will receive the operator's mail: valid, and not hosted here."""

    def run_validation(self, data: Any = serializers.empty) -> Any:
        value = super().run_validation(data)
        if isinstance(value, str) and value and (problem := oversight_address_problem(value)):
            raise serializers.ValidationError(problem, code="validation_error")
        return value
