"""The API keys page: scopes and last use shown, revoked keys behind a toggle, and a
confirmation before revoking."""

from __future__ import annotations

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import ApiKey
from tests.conftest import Tenant, key_for

PAGE = "/console/keys"


def test_scopes_and_last_use_are_shown(owner: Tenant, console: Client) -> None:
    used, _ = key_for(owner.account, "read", "send")
    used.last_used_at = timezone.now()
    used.save(update_fields=["last_used_at"])
    key_for(owner.account, "oversight")
    body = console.get(PAGE).content.decode()
    assert "read, send" in body
    assert "oversight" in body
    assert used.last_used_at.strftime("%Y-%m-%d %H:%M") in body
    assert '<span class="muted">never</span>' in body


def test_revoked_keys_are_hidden_until_asked_for(owner: Tenant, console: Client) -> None:
    active, _ = key_for(owner.account, "read")
    revoked, _ = key_for(owner.account, "read")
    ApiKey.objects.filter(pk=revoked.pk).update(is_active=False, revoked_at=timezone.now())
    default = console.get(PAGE).content.decode()
    assert active.prefix in default
    assert revoked.prefix not in default
    assert f'href="{PAGE}?revoked=1"' in default
    shown = console.get(PAGE, {"revoked": "1"}).content.decode()
    assert revoked.prefix in shown
    assert active.prefix in shown
    assert "hide revoked keys" in shown


def test_revoking_asks_first(owner: Tenant, console: Client) -> None:
    key, _ = key_for(owner.account, "read")
    url = f"{PAGE}/{key.pk}/revoke"
    assert f'href="{url}"' in console.get(PAGE).content.decode()
    confirm = console.get(url).content.decode()
    assert f"Revoke key {key.name}?" in confirm
    assert 'name="confirmed" value="yes"' in confirm
    assert console.post(url)["Location"] == url
    key.refresh_from_db()
    assert key.is_active
    done = console.post(url, {"confirmed": "yes"}, follow=True)
    assert done.redirect_chain == [(PAGE, 302)]
    key.refresh_from_db()
    assert not key.is_active
    assert f"Key {key.name} ({key.prefix}…) is revoked." in done.content.decode()


def test_another_accounts_key_is_not_found(owner: Tenant, other: Tenant, console: Client) -> None:
    theirs, _ = key_for(other.account, "admin")
    url = f"{PAGE}/{theirs.pk}/revoke"
    shown = console.get(url, follow=True)
    assert shown.redirect_chain == [(PAGE, 302)]
    assert "code-not_found" in shown.content.decode()
    console.post(url, {"confirmed": "yes"})
    theirs.refresh_from_db()
    assert theirs.is_active
    listed = console.get(PAGE, {"revoked": "1"}).content.decode()
    assert theirs.prefix not in listed


def test_keys_page_query_count_does_not_grow_and_pages_by_cursor(
    owner: Tenant, console: Client
) -> None:
    def count(n: int) -> int:
        for _ in range(n):
            key_for(owner.account, "read")
        with CaptureQueriesContext(connection) as queries:
            assert console.get(PAGE).status_code == 200
        return len(queries)

    assert count(1) == count(10)
    first = console.get(PAGE, {"limit": "4"})
    cursor = first.context["next_cursor"]
    assert cursor
    assert f"cursor={cursor}" in first.content.decode()
    second = console.get(PAGE, {"limit": "4", "cursor": cursor})
    first_ids = {key.pk for key in first.context["keys"]}
    assert first_ids.isdisjoint(key.pk for key in second.context["keys"])


def test_a_bad_cursor_is_a_catalog_error(console: Client) -> None:
    response = console.get(PAGE, {"cursor": "not-a-cursor"}, follow=True)
    assert response.redirect_chain == [(PAGE, 302)]
    assert "code-" in response.content.decode()
