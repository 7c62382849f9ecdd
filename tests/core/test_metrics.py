"""GET /metrics: refused without the token, and the series operators need with it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from mailboxes.models import EmailStatus, WebhookDelivery
from mailboxes.tasks import sweep_stuck_emails
from multimail.models import PeriodicJobRun
from tests.conftest import Tenant
from tests.oversight.conftest import held, make_email

pytestmark = pytest.mark.django_db

TOKEN = "metrics-test-token"


@pytest.fixture
def scrape(settings: Any) -> Any:
    settings.METRICS_TOKEN = TOKEN

    def get() -> str:
        response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain; version=0.0.4")
        return response.content.decode()

    return get


def test_refused_without_the_token(settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN
    assert Client().get("/metrics").status_code == 401
    wrong = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 401
    assert wrong["WWW-Authenticate"].startswith("Bearer")
    # An API key is not the metrics token.
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer mm_live_x").status_code == 401


def test_off_when_no_token_is_configured(settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_requests_by_route_and_status_with_latency(scrape: Any, owner: Tenant, api: Any) -> None:
    client = api("read")
    assert client.get(f"/v1/mailboxes/{owner.mailbox.pk}").status_code == 200
    assert client.get("/v1/mailboxes/nope").status_code == 404
    body = scrape()
    route = 'route="/v1/mailboxes/<str:mailbox_id>"'
    assert f'multimail_http_requests_total{{method="GET",{route},status="200"}}' in body
    assert f'multimail_http_requests_total{{method="GET",{route},status="404"}}' in body
    latency = f'multimail_http_request_duration_seconds_bucket{{le="+Inf",method="GET",{route}}}'
    assert _value(body, latency) >= 2
    assert "nope" not in body  # the route pattern, never the raw path


def test_mail_series_held_emails_and_the_oldest(scrape: Any, owner: Tenant) -> None:
    make_email(owner.mailbox, status=EmailStatus.SENT)
    old = held(owner.mailbox)
    held(owner.mailbox)
    type(old).objects.filter(pk=old.pk).update(
        status_changed_at=timezone.now() - timedelta(hours=2)
    )
    body = scrape()
    assert 'multimail_emails{direction="outbound",status="sent"} 1.0' in body
    assert 'multimail_emails{direction="outbound",status="pending_send_approval"} 2.0' in body
    assert "multimail_held_emails 2.0" in body
    assert 7190 < _value(body, "multimail_oldest_held_email_age_seconds") < 7300


def test_webhook_failures(scrape: Any, owner: Tenant) -> None:
    for status, attempts in (("delivered", 3), ("failed", 6), ("pending", 1)):
        WebhookDelivery.objects.create(
            account=owner.account,
            event_type="message.received",
            url="https://hooks.example/x",
            status=status,
            attempts=attempts,
        )
    body = scrape()
    assert 'multimail_webhook_deliveries{status="failed"} 1.0' in body
    # 2 failed attempts before the delivery, 6, and 1: every attempt but a success.
    assert "multimail_webhook_delivery_failures_total 9.0" in body


def test_tasks_queue_depth_and_the_last_run_of_each_periodic_job(scrape: Any) -> None:
    sweep_stuck_emails.apply()  # as the scheduler runs it without a broker
    run = PeriodicJobRun.objects.get(name="mailboxes.tasks.sweep_stuck_emails")
    assert run.succeeded
    body = scrape()
    assert (
        'multimail_task_duration_seconds_count{state="SUCCESS",'
        'task="mailboxes.tasks.sweep_stuck_emails"}'
    ) in body
    sweep = '{job="mailboxes.tasks.sweep_stuck_emails"}'
    last_run = _value(body, f"multimail_periodic_job_last_run_timestamp_seconds{sweep}")
    assert last_run == pytest.approx(run.finished_at.timestamp())
    assert _value(body, f"multimail_periodic_job_last_success{sweep}") == 1.0
    # Jobs that never ran are listed at 0, so an alert on their age fires at once.
    never = '{job="billing.tasks.enforce_unpaid_accounts"}'
    assert _value(body, f"multimail_periodic_job_last_run_timestamp_seconds{never}") == 0.0
    assert _value(body, 'multimail_task_queue_depth{queue="celery"}') == 0.0


def _value(body: str, series: str) -> float:
    line = next(line for line in body.splitlines() if line.startswith(series + " "))
    return float(line.rsplit(" ", 1)[1])
