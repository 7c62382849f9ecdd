"""Custom domains: plan gate, validation, Postmark registration (local fake), DNS
verification with a fake resolver, deletion rules, tenancy and listing."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Account
from mailboxes.models import Domain, Mailbox
from mailboxes.services.domains import DnsUnavailable
from tests.conftest import assert_error

NAME = "mail.example.org"


@pytest.fixture
def pro(owner: Any) -> Any:
    Account.objects.filter(pk=owner.account.pk).update(plan="pro")
    owner.account.refresh_from_db()
    return owner


def create(client: Any, domain: str = NAME) -> Any:
    return client.post("/v1/domains", {"domain": domain}, format="json")


def publish_all(fake_dns: dict[Any, Any], records: dict[str, Any]) -> None:
    for record in records.values():
        fake_dns[(record["name"], record["type"])] = [record["value"]]


def test_starter_plan_cannot_add_domains(api: Any) -> None:
    assert_error(
        create(api("admin")),
        "plan_feature_unavailable",
        plan="starter",
        required_plans=["pro", "scale"],
    )


def test_create_returns_records_to_publish(api: Any, pro: Any, settings: Any) -> None:
    response = create(api("admin"), "Mail.Example.org.")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["domain"] == NAME
    assert body["status"] == "pending"
    assert body["verified_at"] is None
    assert not any(body[f"{k}_verified"] for k in ("dkim", "spf", "mx", "return_path"))
    records = body["dns_records"]
    assert set(records) == {"dkim", "spf", "mx", "return_path"}
    assert records["mx"] == {
        "type": "MX",
        "name": NAME,
        "value": settings.MAIL_DOMAIN,
        "priority": 10,
    }
    assert records["spf"]["value"].startswith("v=spf1")
    assert records["dkim"]["name"].endswith(f"._domainkey.{NAME}")


@pytest.mark.parametrize(
    "bad",
    ["", "localhost", "no_underscores.com", "-bad.com", "a..b.com", "x.123", "a" * 64 + ".com"],
)
def test_invalid_domain_names(api: Any, pro: Any, bad: str) -> None:
    response = create(api("admin"), bad)
    assert_error(response, "missing_parameter" if not bad else "invalid_parameter", param="domain")


def test_own_mail_domain_refused(api: Any, pro: Any, settings: Any) -> None:
    response = create(api("admin"), f"acme.{settings.MAIL_DOMAIN}")
    assert_error(response, "invalid_parameter", param="domain")


def test_domain_taken_by_other_tenant(api: Any, pro: Any, other: Any) -> None:
    Domain.objects.create(account=other.account, domain=NAME)
    assert_error(create(api("admin")), "domain_taken", param="domain")


def test_same_account_duplicate_is_conflict(api: Any, pro: Any) -> None:
    client = api("admin")
    assert create(client).status_code == 201
    assert_error(create(client), "conflict")


def test_domain_limit(api: Any, pro: Any) -> None:
    Domain.objects.bulk_create(
        Domain(account=pro.account, domain=f"d{i}.example.net") for i in range(5)
    )
    assert_error(create(api("admin")), "limit_exceeded", limit=5, plan="pro")


def test_verify_all_records_activates(api: Any, pro: Any, fake_dns: dict[Any, Any]) -> None:
    client = api("admin")
    created = create(client).json()
    publish_all(fake_dns, created["dns_records"])
    result = client.post(f"/v1/domains/{created['id']}/verify")
    assert result.status_code == 200, result.content
    body = result.json()
    assert body["status"] == "active"
    assert body["verified_at"] is not None
    assert all(body[f"{k}_verified"] for k in ("dkim", "spf", "mx", "return_path"))
    assert "dns_records" not in body
    assert Domain.objects.get(pk=created["id"]).last_checked_at is not None


@pytest.mark.parametrize("missing", ["dkim", "spf", "mx", "return_path"])
def test_each_record_failing_keeps_pending(
    api: Any, pro: Any, fake_dns: dict[Any, Any], missing: str
) -> None:
    client = api("admin")
    created = create(client).json()
    records = created["dns_records"]
    publish_all(fake_dns, records)
    record = records[missing]
    fake_dns[(record["name"], record["type"])] = ["something-else.example"]
    body = client.post(f"/v1/domains/{created['id']}/verify").json()
    assert body["status"] == "pending"
    assert body["verified_at"] is None
    assert body[f"{missing}_verified"] is False
    assert all(body[f"{k}_verified"] for k in ("dkim", "spf", "mx", "return_path") if k != missing)


def test_spf_with_other_mechanisms_still_verifies(
    api: Any, pro: Any, fake_dns: dict[Any, Any], settings: Any
) -> None:
    client = api("admin")
    created = create(client).json()
    publish_all(fake_dns, created["dns_records"])
    fake_dns[(NAME, "TXT")] = [
        "google-site-verification=abc",
        f"v=spf1 include:_spf.google.com include:{settings.MAIL_DOMAIN} -all",
    ]
    assert client.post(f"/v1/domains/{created['id']}/verify").json()["spf_verified"] is True


def test_nothing_published_is_not_verified(api: Any, pro: Any, fake_dns: dict[Any, Any]) -> None:
    client = api("admin")
    created = create(client).json()
    body = client.post(f"/v1/domains/{created['id']}/verify").json()
    assert body["status"] == "pending"


def test_dns_failure_is_upstream_error(api: Any, pro: Any, fake_dns: dict[Any, Any]) -> None:
    client = api("admin")
    created = create(client).json()
    record = created["dns_records"]["dkim"]
    fake_dns[(record["name"], record["type"])] = DnsUnavailable("timed out")
    response = client.post(f"/v1/domains/{created['id']}/verify")
    assert_error(response, "upstream_error", provider="dns")


def test_real_resolver_maps_outcomes(monkeypatch: pytest.MonkeyPatch) -> None:
    import dns.exception
    import dns.resolver

    from mailboxes.services import domains

    def failing(exc: Exception) -> Any:
        def resolve(self: Any, name: str, rdtype: str) -> Any:
            raise exc

        return resolve

    monkeypatch.setattr(dns.resolver.Resolver, "resolve", failing(dns.resolver.NXDOMAIN()))
    assert domains.dns_lookup("x.example", "TXT") == []
    monkeypatch.setattr(dns.resolver.Resolver, "resolve", failing(dns.exception.Timeout()))
    with pytest.raises(DnsUnavailable):
        domains.dns_lookup("x.example", "TXT")


def test_postmark_registration(api: Any, pro: Any, receiver: Any, settings: Any) -> None:
    settings.ANYMAIL = {**settings.ANYMAIL, "POSTMARK_ACCOUNT_TOKEN": "pm-account-token"}
    settings.POSTMARK_API_BASE = f"http://127.0.0.1:{receiver.port}"
    receiver.reply_body = {
        "ID": 36735,
        "Name": NAME,
        "DKIMPendingHost": f"20240101pm._domainkey.{NAME}",
        "DKIMPendingTextValue": "k=rsa;p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCFn",
        "ReturnPathDomain": f"pm-bounces.{NAME}",
        "ReturnPathDomainCNAMEValue": "pm.mtasv.net",
    }
    response = create(api("admin"))
    assert response.status_code == 201, response.content
    (request,) = receiver.requests
    assert request.path == "/domains"
    assert request.headers["X-Postmark-Account-Token"] == "pm-account-token"
    records = response.json()["dns_records"]
    assert records["dkim"] == {
        "type": "TXT",
        "name": f"20240101pm._domainkey.{NAME}",
        "value": "k=rsa;p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCFn",
    }
    assert records["return_path"]["value"] == "pm.mtasv.net"
    assert "include:spf.mtasv.net" in records["spf"]["value"]
    assert records["mx"]["value"] == "inbound.postmarkapp.com"
    domain = Domain.objects.get()
    assert domain.provider_domain_id == "36735"

    # Deleting removes it at Postmark as well.
    assert api("admin").delete(f"/v1/domains/{domain.pk}").status_code == 200
    assert receiver.requests[-1].path == "/domains/36735"


def test_postmark_rejection_is_upstream_error(
    api: Any, pro: Any, start_receiver: Any, settings: Any
) -> None:
    receiver = start_receiver(statuses=[422])
    receiver.reply_body = {"ErrorCode": 503, "Message": "Domain already exists."}
    settings.ANYMAIL = {**settings.ANYMAIL, "POSTMARK_ACCOUNT_TOKEN": "pm-account-token"}
    settings.POSTMARK_API_BASE = f"http://127.0.0.1:{receiver.port}"
    error = assert_error(create(api("admin")), "upstream_error", provider="postmark")
    assert "Domain already exists." in error["message"]
    assert not Domain.objects.exists()


def test_postmark_unreachable_is_upstream_error(api: Any, pro: Any, settings: Any) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.ANYMAIL = {**settings.ANYMAIL, "POSTMARK_ACCOUNT_TOKEN": "pm-account-token"}
    settings.POSTMARK_API_BASE = f"http://127.0.0.1:{port}"
    assert_error(create(api("admin")), "upstream_error", provider="postmark")


def test_delete_refused_while_mailboxes_use_it(api: Any, pro: Any) -> None:
    client = api("admin")
    created = create(client).json()
    Mailbox.objects.create(account=pro.account, address=f"agent@{NAME}", domain_id=created["id"])
    assert_error(client.delete(f"/v1/domains/{created['id']}"), "conflict")
    Mailbox.objects.filter(domain_id=created["id"]).update(deleted_at="2026-01-01T00:00:00Z")
    assert client.delete(f"/v1/domains/{created['id']}").json() == {"status": "deleted"}
    assert_error(client.get(f"/v1/domains/{created['id']}"), "not_found", resource="domain")


def test_other_tenant_domain_is_not_found(api: Any, pro: Any, other: Any) -> None:
    theirs = Domain.objects.create(account=other.account, domain="their.example.com")
    client = api("admin")
    assert_error(client.get(f"/v1/domains/{theirs.pk}"), "not_found", resource="domain")
    assert_error(client.delete(f"/v1/domains/{theirs.pk}"), "not_found", resource="domain")
    assert_error(client.post(f"/v1/domains/{theirs.pk}/verify"), "not_found", resource="domain")
    assert api("admin").get("/v1/domains").json()["domains"] == []


def test_list_and_query_count(api: Any, pro: Any, django_assert_num_queries: Any) -> None:
    Domain.objects.bulk_create(
        Domain(account=pro.account, domain=f"d{i}.example.net") for i in range(4)
    )
    client = api("admin")
    client.get("/v1/domains")  # the first call also records the key's use
    with CaptureQueriesContext(connection) as one:
        assert len(client.get("/v1/domains?limit=1").json()["domains"]) == 1
    with django_assert_num_queries(len(one)):
        body = client.get("/v1/domains?limit=4").json()
    assert len(body["domains"]) == 4
    assert body["cursor"] is None


def test_read_key_cannot_manage_domains(api: Any, pro: Any) -> None:
    assert_error(create(api("read")), "insufficient_permissions", required_scope="admin")


def test_postmark_delete_failure_keeps_domain(
    api: Any, pro: Any, start_receiver: Any, settings: Any
) -> None:
    receiver = start_receiver(statuses=[200, 500])
    receiver.reply_body = {"ID": 7, "DKIMHost": f"pm._domainkey.{NAME}", "DKIMTextValue": "k"}
    settings.ANYMAIL = {**settings.ANYMAIL, "POSTMARK_ACCOUNT_TOKEN": "pm-account-token"}
    settings.POSTMARK_API_BASE = f"http://127.0.0.1:{receiver.port}"
    client = api("admin")
    created = create(client).json()
    response = client.delete(f"/v1/domains/{created['id']}")
    assert_error(response, "upstream_error", provider="postmark")
    assert Domain.objects.filter(pk=created["id"]).exists()
