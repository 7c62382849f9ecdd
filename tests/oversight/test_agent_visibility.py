"""Rejected inbound mail is never shown to the agent; the operator still sees it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from accounts.actors import Actor
from mailboxes.models import Direction, Email, EmailStatus
from oversight.services import email_decide
from tests.conftest import Tenant, assert_error

pytestmark = pytest.mark.django_db


def test_rejected_inbound_is_not_listed_read_or_threaded(
    owner: Tenant, api: Callable[..., Any], hold: Callable[..., Email]
) -> None:
    owner.mailbox.oversight_mode = "gated_all"
    owner.mailbox.save(update_fields=["oversight_mode"])
    email = hold(owner.mailbox, direction=Direction.INBOUND)
    email_decide(actor=Actor.for_operator(owner.operator), email_id=email.pk, action="reject")
    assert Email.objects.get(pk=email.pk).status == EmailStatus.REJECTED
    agent = api("read")
    base = f"/v1/mailboxes/{owner.mailbox.pk}"

    listed = agent.get(f"{base}/emails").json()["emails"]
    assert email.pk not in [item["id"] for item in listed]
    assert_error(agent.get(f"{base}/emails/{email.pk}"), "not_found", resource="email")
    assert_error(agent.get(f"{base}/threads/{email.thread_id}"), "not_found", resource="thread")


def test_held_inbound_is_listed_without_its_body(
    owner: Tenant, api: Callable[..., Any], hold: Callable[..., Email]
) -> None:
    owner.mailbox.oversight_mode = "gated_all"
    owner.mailbox.save(update_fields=["oversight_mode"])
    email = hold(owner.mailbox, direction=Direction.INBOUND)
    detail = api("read").get(f"/v1/mailboxes/{owner.mailbox.pk}/emails/{email.pk}").json()
    assert detail["status"] == EmailStatus.PENDING_INBOUND_APPROVAL
    assert detail["markdown"] == ""
