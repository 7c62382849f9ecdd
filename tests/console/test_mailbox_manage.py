"""Mailboxes from the console: create and delete through POST/DELETE /v1/mailboxes's own
services (same checks, limits and errors), display name and webhook URLs, and clear links
to the mode and the rules."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import AuditEntry
from mailboxes.models import Mailbox
from tests.conftest import Tenant

PAGE = "/console/mailboxes"


def test_create_a_mailbox_like_the_api(owner: Tenant, console: Client) -> None:
    done = console.post(PAGE, {"address_local": "sales", "display_name": "Sales desk"}, follow=True)
    mailbox = Mailbox.objects.get(account=owner.account, display_name="Sales desk")
    assert mailbox.address.startswith("sales@")
    assert mailbox.oversight_mode == "gated_send"
    assert done.redirect_chain == [(f"{PAGE}/{mailbox.pk}", 302)]
    assert f"{mailbox.address} is created in Gated: outbound mode" in done.content.decode()
    assert AuditEntry.objects.filter(account=owner.account, resource_id=mailbox.pk).exists()


def test_a_taken_address_shows_the_catalog_error_at_the_field(
    owner: Tenant, other: Tenant, console: Client
) -> None:
    local = owner.mailbox.address.split("@")[0]
    response = console.post(PAGE, {"address_local": local}, follow=True)
    assert response.redirect_chain == [(PAGE, 302)]
    errors = response.context["create_form"].errors["address_local"]
    assert errors == [
        f"Another mailbox already uses {owner.mailbox.address}. Choose a different address_local."
    ]
    assert 'class="feedback error" role="alert"' in response.content.decode()
    assert Mailbox.objects.filter(account=owner.account).count() == 1


def test_the_plans_mailbox_limit_applies(owner: Tenant, console: Client) -> None:
    console.post(PAGE, {"address_local": "second"})
    response = console.post(PAGE, {"address_local": "third"}, follow=True)
    body = response.content.decode()
    assert "plan allows 2 mailboxes" in body
    assert not Mailbox.objects.filter(address__startswith="third@").exists()


@pytest.mark.parametrize("bad", ["", "a b@", "x" * 400, "line\nbreak"])
def test_bad_addresses_are_refused(owner: Tenant, console: Client, bad: str) -> None:
    response = console.post(PAGE, {"address_local": bad}, follow=True)
    assert response.context["create_form"].errors["address_local"]
    assert Mailbox.objects.filter(account=owner.account).count() == 1


def test_an_unsafe_webhook_url_is_refused_at_the_field(owner: Tenant, console: Client) -> None:
    response = console.post(
        PAGE, {"address_local": "hooks", "webhook_url": "http://127.0.0.1/hook"}, follow=True
    )
    assert response.context["create_form"].errors["webhook_url"]
    assert not Mailbox.objects.filter(address__startswith="hooks@").exists()


def test_delete_asks_then_deletes(owner: Tenant, console: Client) -> None:
    url = f"{PAGE}/{owner.mailbox.pk}/delete"
    detail = console.get(f"{PAGE}/{owner.mailbox.pk}").content.decode()
    assert f'href="{url}"' in detail
    confirm = console.get(url)
    assert f"Delete {owner.mailbox.address}?" in confirm.content.decode()
    assert console.post(url)["Location"] == url
    done = console.post(url, {"confirmed": "yes"}, follow=True)
    assert done.redirect_chain == [(PAGE, 302)]
    owner.mailbox.refresh_from_db()
    assert owner.mailbox.is_active is False
    assert AuditEntry.objects.filter(
        action="mailbox.deleted", resource_id=owner.mailbox.pk
    ).exists()
    # Deleted: readable, but no second delete.
    again = console.post(url, {"confirmed": "yes"}, follow=True)
    assert "code-not_found" in again.content.decode()


def test_another_accounts_mailbox_is_not_found(
    owner: Tenant, other: Tenant, console: Client
) -> None:
    for url in (
        f"{PAGE}/{other.mailbox.pk}/delete",
        f"{PAGE}/{other.mailbox.pk}",
        f"{PAGE}/{other.mailbox.pk}/settings",
    ):
        response = console.post(url, {"confirmed": "yes", "display_name": "Hijacked"}, follow=True)
        assert "code-not_found" in response.content.decode() or response.status_code == 405
        assert other.mailbox.address not in response.content.decode()
        shown = console.get(url, follow=True)
        assert other.mailbox.address not in shown.content.decode()
    other.mailbox.refresh_from_db()
    assert other.mailbox.is_active is True
    assert other.mailbox.display_name != "Hijacked"


def test_display_name_and_webhook_urls_are_saved(
    owner: Tenant, console: Client, public_dns: None
) -> None:
    url = f"{PAGE}/{owner.mailbox.pk}"
    page = console.get(url).content.decode()
    assert 'name="oversight_webhook_url"' in page
    assert f'href="/console/mailboxes/{owner.mailbox.pk}/rules"' in page
    console.post(
        f"{url}/settings",
        {
            "display_name": "Agent Smith",
            "default_gate_timing": "gate_first",
            "webhook_url": "https://hooks.example/events",
            "oversight_webhook_url": "https://hooks.example/oversight",
        },
    )
    owner.mailbox.refresh_from_db()
    assert owner.mailbox.display_name == "Agent Smith"
    assert owner.mailbox.webhook_url == "https://hooks.example/events"
    assert owner.mailbox.oversight_webhook_url == "https://hooks.example/oversight"


def test_the_list_links_mode_rules_and_settings(owner: Tenant, console: Client) -> None:
    body = console.get(PAGE).content.decode()
    assert f'href="/console/mailboxes/{owner.mailbox.pk}/rules"' in body
    assert f'href="/console/mailboxes/{owner.mailbox.pk}#mode-heading"' in body


def test_list_query_count_with_the_create_form(owner: Tenant, console: Client) -> None:
    def count(n: int) -> int:
        for index in range(n):
            Mailbox.objects.create(
                account=owner.account, address=f"q{n}-{index}@acme.multimail.localhost"
            )
        with CaptureQueriesContext(connection) as queries:
            console.get(PAGE)
        return len(queries)

    assert count(1) == count(8)
