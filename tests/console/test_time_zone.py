"""Console times in the operator's zone (the mm_tz cookie), UTC on hover, UTC in the API."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import available_timezones

from django.test import Client
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from accounts.actors import Actor
from accounts.models import AuditEntry
from accounts.services import audit_record
from multimail.operator_time import TIME_ZONE_COOKIE
from tests.conftest import client_for, key_for

WHEN = datetime(2026, 12, 1, 15, 4, 5, tzinfo=UTC)
TIME = re.compile(r'<time datetime="([^"]+)" title="([^"]+)">([^<]+)</time>')


def _audit_times(console: Client, zone: str | None) -> tuple[str, str, str]:
    if zone is None:
        console.cookies.pop(TIME_ZONE_COOKIE, None)
    else:
        console.cookies[TIME_ZONE_COOKIE] = zone
    body = console.get("/console/audit").content.decode()
    found = TIME.search(body)
    assert found is not None
    return found.group(1), found.group(2), found.group(3)


def _one_audit_entry(owner) -> None:
    audit_record(actor=Actor.for_operator(owner.operator), action="thing.done", resource_type="x")
    AuditEntry.objects.filter(account=owner.account).update(created_at=WHEN)


def test_times_show_in_the_operators_zone_with_utc_on_hover(owner, console):
    _one_audit_entry(owner)
    machine, hover, shown = _audit_times(console, "Europe/Paris")
    assert machine == "2026-12-01T15:04:05Z"
    assert hover == "2026-12-01 15:04:05 UTC"
    assert shown == "2026-12-01 16:04:05"
    body = console.get("/console/audit").content.decode()
    assert 'times in <span id="time-zone">Europe/Paris</span>' in body


def test_no_cookie_means_utc(owner, console):
    _one_audit_entry(owner)
    assert _audit_times(console, None)[2] == "2026-12-01 15:04:05"


KNOWN_ZONES = available_timezones()


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    zone=st.one_of(
        st.text(
            alphabet=st.characters(codec="ascii", exclude_characters=';,\\"\r\n '), max_size=40
        ),
        st.sampled_from(["../../etc/passwd", "/usr/share/zoneinfo/UTC", "Europe/../UTC", "CET5x"]),
    )
)
def test_anything_but_a_known_zone_name_means_utc(owner, console, zone):
    assume(zone not in KNOWN_ZONES)
    if not AuditEntry.objects.filter(account=owner.account).exists():
        _one_audit_entry(owner)
    assert _audit_times(console, zone)[2] == "2026-12-01 15:04:05"


def test_the_api_keeps_utc_whatever_the_cookie(owner):
    _, raw = key_for(owner.account, "read")
    agent = client_for(raw)
    agent.cookies[TIME_ZONE_COOKIE] = "Asia/Tokyo"
    body = agent.get("/v1/account").json()
    stamps = [value for value in body.values() if isinstance(value, str) and "T" in value]
    assert stamps
    assert all(value.endswith("Z") for value in stamps if value[:4].isdigit())


def test_the_hosted_approval_page_shows_the_zone(owner, django_capture_on_commit_callbacks):
    from mailboxes.lifecycle import email_hold
    from tests.console.conftest import held_email
    from tests.oversight.conftest import last_token

    owner.mailbox.oversight_mode = "gated_send"
    owner.mailbox.save()
    with django_capture_on_commit_callbacks(execute=True):
        email_hold(email=held_email(owner.mailbox))
    client = Client()
    client.cookies[TIME_ZONE_COOKIE] = "America/New_York"
    body = client.get(f"/v1/approve/{last_token()}").content.decode()
    assert "(America/New_York)" in body
    assert TIME.search(body) is not None
