"""Custom domains (Pro and Scale): registration, the DNS records to publish, verification.

With POSTMARK_ACCOUNT_TOKEN set, the domain is registered with Postmark's domain API and
Postmark supplies the DKIM key and the return-path target. Without it (the embedded
default) the records delegate to this server's MAIL_DOMAIN: DKIM by CNAME to its selector,
SPF by include, MX and return-path to MAIL_DOMAIN.

``dns_lookup`` is the single place that talks to DNS; tests replace it with a fake resolver.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import dns.exception
import dns.resolver
import requests
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.actors import Actor
from accounts.models import Account
from accounts.plans import DOMAIN_PLANS, limits_for
from accounts.services import audit_record
from mailboxes.models import Domain, Mailbox
from multimail.errors import ApiError, not_found

logger = logging.getLogger("multimail.domains")

POSTMARK_TIMEOUT_SECONDS = 10.0
DNS_TIMEOUT_SECONDS = 5.0
POSTMARK_SPF_INCLUDE = "include:spf.mtasv.net"
POSTMARK_INBOUND_MX = "inbound.postmarkapp.com"
DKIM_SELECTOR = "mm1"
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TLD = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
RECORD_FLAGS = {
    "dkim": "dkim_verified",
    "spf": "spf_verified",
    "mx": "mx_verified",
    "return_path": "return_path_verified",
}


class DnsUnavailable(Exception):
    """The lookup itself failed (timeout, no nameserver answered): nothing is known."""


def dns_lookup(name: str, rdtype: str) -> list[str]:
    """Answers for ``name``/``rdtype`` as text: TXT strings joined, CNAME and MX targets
    without the trailing dot. NXDOMAIN and "no answer" are an empty list (not verified)."""
    resolver = dns.resolver.Resolver()
    resolver.lifetime = DNS_TIMEOUT_SECONDS
    try:
        answer = resolver.resolve(name, rdtype)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
        raise DnsUnavailable(str(exc)) from exc
    except dns.exception.DNSException as exc:
        raise DnsUnavailable(str(exc)) from exc
    values: list[str] = []
    for record in answer:
        if rdtype == "TXT":
            values.append(b"".join(record.strings).decode(errors="replace"))
        elif rdtype == "MX":
            values.append(record.exchange.to_text().rstrip(".").lower())
        else:
            values.append(record.to_text().rstrip(".").lower())
    return values


def domain_name_normalize(raw: str) -> str:
    name = raw.strip().rstrip(".").lower()
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError:
        name = ""
    labels = name.split(".")
    valid = (
        0 < len(name) <= 253
        and len(labels) >= 2
        and all(_LABEL.match(label) for label in labels)
        and bool(_TLD.match(labels[-1]))
    )
    if not valid:
        raise ApiError(
            "invalid_parameter",
            f"{raw!r} is not a domain name. Send a registered domain such as example.com "
            "or mail.example.com, without scheme, path or trailing dot.",
            param="domain",
        )
    own = settings.MAIL_DOMAIN
    if name == own or name.endswith(f".{own}"):
        raise ApiError(
            "invalid_parameter",
            f"{name} is part of this server's own mail domain; register a domain you own.",
            param="domain",
        )
    return name


def domain_get(*, account: Account, domain_id: str) -> Domain:
    domain = Domain.objects.filter(account=account, pk=domain_id).first()
    if domain is None:
        raise not_found("domain")
    return domain


def _embedded_records(name: str) -> dict[str, dict[str, Any]]:
    own = settings.MAIL_DOMAIN
    return {
        "dkim": {
            "type": "CNAME",
            "name": f"{DKIM_SELECTOR}._domainkey.{name}",
            "value": f"{DKIM_SELECTOR}._domainkey.{own}",
        },
        "return_path": {"type": "CNAME", "name": f"bounces.{name}", "value": own},
        "spf": {"type": "TXT", "name": name, "value": f"v=spf1 a mx include:{own} ~all"},
        "mx": {"type": "MX", "name": name, "value": own, "priority": 10},
    }


def _postmark_register(name: str) -> tuple[str, dict[str, dict[str, Any]]]:
    """Create the domain at Postmark; its answer carries the DKIM key and return-path target."""
    try:
        response = requests.post(
            f"{settings.POSTMARK_API_BASE}/domains",
            json={"Name": name, "ReturnPathDomain": f"pm-bounces.{name}"},
            headers={
                "Accept": "application/json",
                "X-Postmark-Account-Token": str(settings.ANYMAIL["POSTMARK_ACCOUNT_TOKEN"]),
            },
            timeout=POSTMARK_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
        body = response.json() if response.content else {}
    except (requests.RequestException, ValueError) as exc:
        raise ApiError(
            "upstream_error",
            f"Postmark's domain API could not be reached ({type(exc).__name__}). Retry shortly.",
            provider="postmark",
        ) from exc
    if response.status_code != 200 or not isinstance(body, dict) or "ID" not in body:
        message = body.get("Message", "") if isinstance(body, dict) else ""
        raise ApiError(
            "upstream_error",
            f"Postmark refused to register {name} (HTTP {response.status_code}"
            + (f": {message}" if message else "")
            + "). Retry shortly, or contact support if it persists.",
            provider="postmark",
        )
    dkim_host = body.get("DKIMPendingHost") or body.get("DKIMHost") or ""
    dkim_value = body.get("DKIMPendingTextValue") or body.get("DKIMTextValue") or ""
    records = {
        "dkim": {"type": "TXT", "name": dkim_host, "value": dkim_value},
        "return_path": {
            "type": "CNAME",
            "name": body.get("ReturnPathDomain") or f"pm-bounces.{name}",
            "value": body.get("ReturnPathDomainCNAMEValue") or "pm.mtasv.net",
        },
        "spf": {"type": "TXT", "name": name, "value": f"v=spf1 a mx {POSTMARK_SPF_INCLUDE} ~all"},
        "mx": {"type": "MX", "name": name, "value": POSTMARK_INBOUND_MX, "priority": 10},
    }
    return str(body["ID"]), records


def _postmark_delete(provider_domain_id: str) -> None:
    try:
        response = requests.delete(
            f"{settings.POSTMARK_API_BASE}/domains/{provider_domain_id}",
            headers={
                "Accept": "application/json",
                "X-Postmark-Account-Token": str(settings.ANYMAIL["POSTMARK_ACCOUNT_TOKEN"]),
            },
            timeout=POSTMARK_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise ApiError(
            "upstream_error",
            "Postmark's domain API could not be reached to remove the domain. Retry shortly.",
            provider="postmark",
        ) from exc
    # 404: already gone at Postmark, which is the state we want.
    if response.status_code not in (200, 404):
        raise ApiError(
            "upstream_error",
            f"Postmark refused to remove the domain (HTTP {response.status_code}). Retry shortly.",
            provider="postmark",
        )


@transaction.atomic
def domain_create(*, actor: Actor, domain: str, request_id: str = "") -> Domain:
    name = domain_name_normalize(domain)
    # The account row lock serialises creates, so the count check cannot be raced.
    account = Account.objects.select_for_update().get(pk=actor.account.pk)
    limits = limits_for(account.plan)
    if not limits.custom_domains:
        raise ApiError(
            "plan_feature_unavailable",
            f"Custom domains are not part of the {limits.title} plan. Upgrade to "
            f"{' or '.join(str(plan).title() for plan in DOMAIN_PLANS)} with "
            "POST /v1/billing/checkout.",
            plan=account.plan,
            required_plans=[str(plan) for plan in DOMAIN_PLANS],
        )
    existing = Domain.objects.filter(domain=name).first()
    if existing is not None and existing.account_id != account.pk:
        raise _domain_taken(name)
    if existing is not None:
        raise ApiError(
            "conflict",
            f"{name} is already registered in this account (id {existing.pk}). "
            f"GET /v1/domains/{existing.pk} for its DNS records.",
        )
    if Domain.objects.filter(account=account).count() >= limits.max_domains:
        raise ApiError(
            "limit_exceeded",
            f"The {limits.title} plan allows {limits.max_domains} custom domains. Delete one "
            "or upgrade with POST /v1/billing/checkout.",
            limit=limits.max_domains,
            plan=account.plan,
        )
    if settings.ANYMAIL.get("POSTMARK_ACCOUNT_TOKEN"):
        provider_id, records = _postmark_register(name)
    else:
        provider_id, records = "", _embedded_records(name)
    try:
        with transaction.atomic():
            created = Domain.objects.create(
                account=account, domain=name, dns_records=records, provider_domain_id=provider_id
            )
    except IntegrityError as exc:
        # Another tenant registered it between the check and the insert.
        raise _domain_taken(name) from exc
    audit_record(
        actor=actor,
        action="domain.created",
        resource_type="domain",
        resource_id=created.pk,
        metadata={"domain": name},
        request_id=request_id,
    )
    return created


def _domain_taken(name: str) -> ApiError:
    return ApiError(
        "domain_taken",
        f"{name} is registered by another account. If you own it, contact support with "
        "proof of ownership.",
        param="domain",
    )


@transaction.atomic
def domain_delete(*, actor: Actor, domain_id: str, request_id: str = "") -> None:
    domain = Domain.objects.select_for_update().filter(account=actor.account, pk=domain_id).first()
    if domain is None:
        raise not_found("domain")
    in_use = Mailbox.objects.filter(domain=domain, deleted_at__isnull=True).count()
    if in_use:
        raise ApiError(
            "conflict",
            f"{in_use} mailbox(es) use {domain.domain}. Delete them first "
            "(DELETE /v1/mailboxes/{id}), then delete the domain.",
        )
    # Deleted mailboxes keep their address forever but no longer need the domain row.
    Mailbox.objects.filter(domain=domain).update(domain=None)
    if domain.provider_domain_id and settings.ANYMAIL.get("POSTMARK_ACCOUNT_TOKEN"):
        _postmark_delete(domain.provider_domain_id)
    domain.delete()
    audit_record(
        actor=actor,
        action="domain.deleted",
        resource_type="domain",
        resource_id=domain_id,
        metadata={"domain": domain.domain},
        request_id=request_id,
    )


def _record_verified(kind: str, record: dict[str, Any]) -> bool:
    expected = str(record.get("value", "")).strip().rstrip(".").lower()
    name = str(record.get("name", ""))
    if not name or not expected:
        return False
    answers = [answer.strip().rstrip(".").lower() for answer in dns_lookup(name, record["type"])]
    if kind == "spf":
        mechanism = next(
            (token for token in expected.split() if token.startswith("include:")), expected
        )
        return any(
            answer.startswith("v=spf1") and mechanism in answer.split() for answer in answers
        )
    if record["type"] == "TXT":
        # DKIM keys are long: compare without the whitespace resolvers may insert.
        squashed = "".join(expected.split())
        return any("".join(answer.split()) == squashed for answer in answers)
    return expected in answers


def domain_verify(*, actor: Actor, domain_id: str) -> Domain:
    """Look every record up now (outside any transaction: DNS can be slow), then save."""
    domain = domain_get(account=actor.account, domain_id=domain_id)
    records: dict[str, Any] = domain.dns_records or {}
    try:
        results = {
            kind: _record_verified(kind, records[kind]) if kind in records else False
            for kind in RECORD_FLAGS
        }
    except DnsUnavailable as exc:
        raise ApiError(
            "upstream_error",
            f"The DNS lookup for {domain.domain} failed ({exc}). Retry in a minute.",
            provider="dns",
        ) from exc
    return _domain_save_verification(actor=actor, domain_id=domain.pk, results=results)


@transaction.atomic
def _domain_save_verification(*, actor: Actor, domain_id: str, results: dict[str, bool]) -> Domain:
    domain = Domain.objects.select_for_update().get(pk=domain_id)
    now = timezone.now()
    for kind, flag in RECORD_FLAGS.items():
        setattr(domain, flag, results[kind])
    all_verified = all(results.values())
    was_active = domain.status == Domain.Status.ACTIVE
    domain.status = Domain.Status.ACTIVE if all_verified else Domain.Status.PENDING
    if all_verified and not was_active:
        domain.verified_at = now
    domain.last_checked_at = now
    domain.save()
    if all_verified != was_active:
        audit_record(
            actor=actor,
            action="domain.verified" if all_verified else "domain.unverified",
            resource_type="domain",
            resource_id=domain.pk,
            metadata=results,
        )
    return domain
