"""The mail provider fails, then recovers: anymail's real Postmark backend against a local
fake Postmark that answers the scripted statuses.

5xx is retried with growing delays and the email is sent once the provider is back; a
provider that never recovers makes the email ``send_failed`` only after the whole retry
budget; a 4xx refusal is not retried.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mailboxes.models import Email, EmailStatus
from mailboxes.tasks import MAX_SEND_RETRIES, deliver_email
from oversight.models import OperatorNotification
from tests.conftest import Tenant
from tests.reliability.conftest import FakeProvider

pytestmark = pytest.mark.django_db


@pytest.fixture
def postmark(settings: Any, fake_postmark: FakeProvider) -> FakeProvider:
    settings.MAILERS = {"default": {"BACKEND": "anymail.backends.postmark.EmailBackend"}}
    settings.ANYMAIL = {
        **settings.ANYMAIL,
        "POSTMARK_SERVER_TOKEN": "server-token",
        "POSTMARK_API_URL": fake_postmark.url,
    }
    return fake_postmark


def _operator_mail(request: dict[str, Any]) -> bool:
    headers = request["json"].get("Headers") or []
    return any(header["Name"] == "X-MultiMail-Notification" for header in headers)


def _agent_mail(provider: FakeProvider) -> list[dict[str, Any]]:
    """The requests that carried the agent's email (the operator's notices go out through
    the same provider)."""
    return [request for request in provider.requests if not _operator_mail(request)]


@pytest.fixture
def retry_delays(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """The countdown of every retry the task asks for, with the email's status then."""
    seen: list[tuple[int, str]] = []
    original = deliver_email.retry

    def spy(*args: Any, **kwargs: Any) -> Any:
        email_id = deliver_email.request.args[0]
        seen.append((kwargs["countdown"], Email.objects.get(pk=email_id).status))
        return original(*args, **kwargs)

    monkeypatch.setattr(deliver_email, "retry", spy)
    return seen


@pytest.fixture
def send_one(
    owner: Tenant, api: Callable[..., Any], django_capture_on_commit_callbacks: Any
) -> Callable[[], Email]:
    client = api("send", "read")

    def run() -> Email:
        # Tasks run in-process (no broker in the test settings): the whole retry chain
        # happens inside this call, the countdowns are recorded rather than slept.
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                f"/v1/mailboxes/{owner.mailbox.id}/send",
                {"to": ["buyer@example.com"], "subject": "Invoice", "markdown": "Attached."},
                format="json",
            )
        assert response.status_code == 202, response.content
        return Email.objects.get(pk=response.json()["id"])

    return run


def test_provider_5xx_twice_then_sent(
    postmark: FakeProvider, retry_delays: list[tuple[int, str]], send_one: Callable[[], Email]
) -> None:
    postmark.statuses = [500, 500]
    email = send_one()
    assert [request["status"] for request in postmark.requests] == [500, 500, 200]
    assert email.status == EmailStatus.SENT
    assert email.provider_message_id == "00000000-0000-0000-0000-000000000003"
    assert email.send_attempts == 3
    # Backoff: each retry waits longer, and the email stays "sending" meanwhile.
    assert retry_delays == [(10, EmailStatus.SENDING), (20, EmailStatus.SENDING)]
    # The one accepted request carried the email, to the right stream.
    accepted = postmark.accepted()
    assert len(accepted) == 1
    assert accepted[0]["path"].endswith("/email")
    assert accepted[0]["json"]["To"] == "buyer@example.com"
    assert accepted[0]["json"]["MessageStream"] == "outbound"


def test_provider_always_5xx_is_send_failed_after_the_budget(
    postmark: FakeProvider, retry_delays: list[tuple[int, str]], send_one: Callable[[], Email]
) -> None:
    postmark.statuses = [500] * 20
    email = send_one()
    attempts = MAX_SEND_RETRIES + 1
    assert len(_agent_mail(postmark)) == attempts
    assert postmark.accepted() == []
    assert email.status == EmailStatus.SEND_FAILED
    assert f"after {attempts} attempts" in email.failure_reason
    # The operator's notice met the same outage: it waits for its own retry, recorded.
    notice = OperatorNotification.objects.get(email=email)
    assert notice.status == OperatorNotification.Status.PENDING
    assert notice.attempts == 1
    assert "500" in notice.last_error
    # Never given up early: every retry found the email still "sending".
    assert [status for _, status in retry_delays] == [EmailStatus.SENDING] * MAX_SEND_RETRIES
    delays = [delay for delay, _ in retry_delays]
    assert delays == sorted(delays)
    assert delays[0] < delays[-1]


def test_provider_4xx_is_not_retried(
    postmark: FakeProvider, retry_delays: list[tuple[int, str]], send_one: Callable[[], Email]
) -> None:
    postmark.statuses = [422]
    email = send_one()
    assert len(_agent_mail(postmark)) == 1
    assert retry_delays == []
    assert email.status == EmailStatus.SEND_FAILED
    assert email.failure_reason.startswith("provider refused")
    # The operator is told, through the provider, which takes the notice.
    [notice] = [request for request in postmark.requests if _operator_mail(request)]
    assert notice["json"]["Subject"] == "[MultiMail] Not sent: Invoice"
    assert notice["status"] == 200
