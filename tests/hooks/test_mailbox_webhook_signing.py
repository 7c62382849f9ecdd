"""A mailbox's own webhook URLs are signed like subscriptions: over real HTTP to a local
receiver, verified with the secret the API hands out, through a rotation and its grace."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import AuditEntry
from mailboxes.events import emit_event
from mailboxes.models import Mailbox, WebhookEvent
from tests.conftest import assert_error
from tests.hooks.conftest import verify_signature

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("allow_private")]


def _secret(api: Any, mailbox: Mailbox) -> dict[str, Any]:
    response = api("admin").get(f"/v1/mailboxes/{mailbox.pk}/webhook-secret")
    assert response.status_code == 200, response.content
    return dict(response.json())


def _deliver(owner: Any, capture: Any, event: WebhookEvent) -> None:
    owner.mailbox.refresh_from_db()
    with capture(execute=True):
        emit_event(
            account=owner.account, event_type=event, data={"email_id": "e1"}, mailbox=owner.mailbox
        )


@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(event=st.sampled_from(list(WebhookEvent)))
def test_every_event_to_a_mailbox_url_is_signed_with_the_mailbox_secret(
    api: Any, owner: Any, start_receiver: Any, django_capture_on_commit_callbacks: Any, event: Any
) -> None:
    receiver = start_receiver()
    field = "oversight_webhook_url" if str(event).startswith("oversight.") else "webhook_url"
    Mailbox.objects.filter(pk=owner.mailbox.pk).update(**{field: receiver.url})
    owner.mailbox.refresh_from_db()
    secret = _secret(api, owner.mailbox)
    assert secret["signing_secret"].startswith("whsec_")
    assert secret["previous_secret_expires_at"] is None
    _deliver(owner, django_capture_on_commit_callbacks, event)
    [request] = receiver.requests
    assert request.headers["X-MultiMail-Event"] == str(event)
    assert verify_signature(
        request.headers["X-MultiMail-Signature"], request.body, secret["signing_secret"]
    )
    assert not verify_signature(
        request.headers["X-MultiMail-Signature"], request.body, "whsec_someone-else"
    )


def test_each_mailbox_has_its_own_secret(api: Any, owner: Any, other: Any) -> None:
    assert owner.mailbox.webhook_signing_secret != other.mailbox.webhook_signing_secret


def test_rotation_signs_with_both_secrets_during_the_grace(
    api: Any, owner: Any, receiver: Any, django_capture_on_commit_callbacks: Any
) -> None:
    Mailbox.objects.filter(pk=owner.mailbox.pk).update(webhook_url=receiver.url)
    old = _secret(api, owner.mailbox)["signing_secret"]
    response = api("admin").post(f"/v1/mailboxes/{owner.mailbox.pk}/webhook-secret/rotate")
    assert response.status_code == 200, response.content
    new = response.json()["signing_secret"]
    assert new != old
    assert response.json()["previous_secret_expires_at"] is not None
    assert _secret(api, owner.mailbox)["signing_secret"] == new
    assert AuditEntry.objects.filter(action="mailbox.webhook_secret_rotated").exists()

    _deliver(owner, django_capture_on_commit_callbacks, WebhookEvent.MESSAGE_RECEIVED)
    header, body = (
        receiver.requests[-1].headers["X-MultiMail-Signature"],
        receiver.requests[-1].body,
    )
    assert verify_signature(header, body, new)
    assert verify_signature(header, body, old)

    # After the grace only the new secret signs.
    Mailbox.objects.filter(pk=owner.mailbox.pk).update(
        webhook_previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
    )
    _deliver(owner, django_capture_on_commit_callbacks, WebhookEvent.MESSAGE_RECEIVED)
    header, body = (
        receiver.requests[-1].headers["X-MultiMail-Signature"],
        receiver.requests[-1].body,
    )
    assert verify_signature(header, body, new)
    assert not verify_signature(header, body, old)


def test_the_secret_needs_admin_scope_and_the_own_tenant(api: Any, owner: Any, other: Any) -> None:
    assert_error(
        api("read").get(f"/v1/mailboxes/{owner.mailbox.pk}/webhook-secret"),
        "insufficient_permissions",
    )
    assert_error(
        api("admin").get(f"/v1/mailboxes/{other.mailbox.pk}/webhook-secret"),
        "not_found",
    )
    assert_error(
        api("admin").post(f"/v1/mailboxes/{other.mailbox.pk}/webhook-secret/rotate"),
        "not_found",
    )


def test_the_secret_is_not_in_the_mailbox_representation(api: Any, owner: Any) -> None:
    body = api("admin").get(f"/v1/mailboxes/{owner.mailbox.pk}").content.decode()
    assert owner.mailbox.webhook_signing_secret not in body


def test_rotation_is_not_gated_by_the_operator(api: Any, owner: Any, public_dns: None) -> None:
    """Rotating gives an admin key nothing it cannot already read; where events go (the
    URLs) stays gated."""
    owner.account.require_operator_approval = True
    owner.account.save(update_fields=["require_operator_approval"])
    response = api("admin").post(f"/v1/mailboxes/{owner.mailbox.pk}/webhook-secret/rotate")
    assert response.status_code == 200, response.content
    gated = api("admin").patch(
        f"/v1/mailboxes/{owner.mailbox.pk}",
        {"webhook_url": "https://hooks.example.com/elsewhere"},
        format="json",
    )
    assert gated.status_code == 202, gated.content
