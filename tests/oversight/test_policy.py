"""The policy module itself: the mode table, scheduling steps and the approved status."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from mailboxes.models import Email, EmailStatus
from multimail.errors import ApiError
from oversight import policy
from oversight.policy import Outcome

NOW = timezone.now()
LATER = NOW + timedelta(hours=1)
EARLIER = NOW - timedelta(minutes=1)


def _email(**fields) -> Email:
    defaults = {"direction": "outbound", "status": EmailStatus.PENDING_SCAN}
    defaults.update(fields)
    return Email(**defaults)


@pytest.mark.parametrize(
    ("mode", "outbound", "copy", "inbound"),
    [
        ("read_only", Outcome.REFUSE, False, Outcome.DELIVER),
        ("gated_all", Outcome.HOLD, False, Outcome.HOLD),
        ("gated_send", Outcome.HOLD, False, Outcome.DELIVER),
        ("monitored", Outcome.SEND, True, Outcome.DELIVER),
        ("autonomous", Outcome.SEND, False, Outcome.DELIVER),
    ],
)
def test_mode_table(mode: str, outbound: Outcome, copy: bool, inbound: Outcome) -> None:
    decision = policy.outbound_decision(mode)
    assert decision.outcome == outbound
    assert decision.copy_operator is copy
    assert policy.inbound_decision(mode) == inbound


def test_read_only_refusal_names_the_upgrade_path() -> None:
    with pytest.raises(ApiError) as refused:
        policy.ensure_can_send("read_only")
    assert refused.value.code == "mailbox_read_only"
    assert refused.value.extra["upgrade_path"] == policy.UPGRADE_PATH
    policy.ensure_can_send("gated_all")  # every other mode may send (perhaps held)


def test_ladder_and_upgrades() -> None:
    assert ("read_only", *policy.UPGRADE_PATH) == policy.LADDER
    assert policy.is_upgrade("gated_send", "monitored")
    assert not policy.is_upgrade("monitored", "gated_all")
    assert not policy.is_upgrade("monitored", "monitored")
    assert policy.is_mode("autonomous")
    assert not policy.is_mode("yolo")


@pytest.mark.parametrize(
    ("mode", "gate_timing", "send_at", "approved", "expected"),
    [
        ("gated_send", "gate_first", LATER, False, Outcome.HOLD),
        ("gated_send", "gate_first", LATER, True, Outcome.WAIT),
        ("gated_send", "schedule_first", LATER, False, Outcome.WAIT),
        ("gated_send", "schedule_first", EARLIER, False, Outcome.HOLD),
        ("gated_send", "gate_first", EARLIER, True, Outcome.SEND),
        ("gated_all", "gate_first", None, False, Outcome.HOLD),
        ("autonomous", "gate_first", LATER, False, Outcome.WAIT),
        ("autonomous", "schedule_first", EARLIER, False, Outcome.SEND),
        ("read_only", "gate_first", EARLIER, True, Outcome.REFUSE),
    ],
)
def test_outbound_step(mode, gate_timing, send_at, approved, expected) -> None:
    email = _email(send_at=send_at, gate_timing=gate_timing, approved_at=NOW if approved else None)
    assert policy.outbound_step(email, mode, now=NOW).outcome == expected


def test_monitored_copy_survives_the_scheduled_step() -> None:
    email = _email(send_at=EARLIER)
    assert policy.outbound_step(email, "monitored", now=NOW).copy_operator


def test_approved_status() -> None:
    assert policy.approved_status(_email(direction="inbound"), now=NOW) == EmailStatus.UNREAD
    flagged = _email(direction="inbound", spam_verdict="flagged")
    assert policy.approved_status(flagged, now=NOW) == EmailStatus.SPAM_FLAGGED
    assert policy.approved_status(_email(), now=NOW) == EmailStatus.SENDING
    assert policy.approved_status(_email(send_at=LATER), now=NOW) == EmailStatus.SCHEDULED
    assert policy.approved_status(_email(send_at=EARLIER), now=NOW) == EmailStatus.SENDING


@pytest.mark.parametrize(
    ("direction", "status", "readable"),
    [
        ("inbound", EmailStatus.PENDING_INBOUND_APPROVAL, False),
        ("inbound", EmailStatus.REJECTED, False),
        ("inbound", EmailStatus.UNREAD, True),
        ("outbound", EmailStatus.PENDING_SEND_APPROVAL, True),
    ],
)
def test_agent_can_read_content(direction: str, status: str, readable: bool) -> None:
    assert policy.agent_can_read_content(_email(direction=direction, status=status)) is readable


def test_held_status() -> None:
    assert policy.held_status("outbound") == EmailStatus.PENDING_SEND_APPROVAL
    assert policy.held_status("inbound") == EmailStatus.PENDING_INBOUND_APPROVAL


@pytest.mark.parametrize(
    ("mode", "verdict", "first"),
    [
        ("autonomous", "clean", EmailStatus.UNREAD),
        ("gated_send", "flagged", EmailStatus.SPAM_FLAGGED),
        # Holding takes precedence over the flag (the operator sees the verdict) ...
        ("gated_all", "flagged", EmailStatus.PENDING_INBOUND_APPROVAL),
        ("gated_all", "clean", EmailStatus.PENDING_INBOUND_APPROVAL),
        # ... but quarantined spam is kept from everyone, the operator included.
        ("gated_all", "quarantined", EmailStatus.SPAM_QUARANTINED),
        ("read_only", "quarantined", EmailStatus.SPAM_QUARANTINED),
    ],
)
def test_inbound_first_status(mode: str, verdict: str, first: EmailStatus) -> None:
    assert policy.inbound_first_status(mode, verdict) == first
