"""The mail series of /metrics, read from the database at scrape time (see multimail.metrics)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, Min, Q, Sum
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mailboxes.models import Direction, Email, EmailStatus, WebhookDelivery

HELD = (EmailStatus.PENDING_SEND_APPROVAL, EmailStatus.PENDING_INBOUND_APPROVAL)


class MailCollector(Collector):
    def collect(self) -> Iterable[Metric]:
        emails = GaugeMetricFamily(
            "multimail_emails",
            "Emails stored, by direction and status.",
            labels=["direction", "status"],
        )
        # One grouped count; the (status, status_changed_at) index serves it. Every pair is
        # listed, at 0 when empty, so a rate over it never starts from a missing series.
        rows = Email.objects.order_by().values_list("direction", "status").annotate(Count("pk"))
        counts = {(direction, status): count for direction, status, count in rows}
        for direction in Direction.values:
            for status in EmailStatus.values:
                emails.add_metric([direction, status], counts.get((direction, status), 0))
        yield emails

        held = (
            Email.objects.filter(status__in=HELD)
            .order_by()
            .aggregate(count=Count("pk"), oldest=Min("status_changed_at"))
        )
        yield GaugeMetricFamily(
            "multimail_held_emails",
            "Emails waiting for the operator (pending_send_approval, pending_inbound_approval).",
            value=held["count"],
        )
        oldest = held["oldest"]
        yield GaugeMetricFamily(
            "multimail_oldest_held_email_age_seconds",
            "How long the oldest held email has waited for the operator (0: none waiting).",
            value=(timezone.now() - oldest).total_seconds() if oldest else 0.0,
        )

        deliveries = GaugeMetricFamily(
            "multimail_webhook_deliveries",
            "Outgoing webhook deliveries, by status (failed: gave up after every retry).",
            labels=["status"],
        )
        by_status = dict(
            WebhookDelivery.objects.order_by().values_list("status").annotate(count=Count("pk"))
        )
        for status in WebhookDelivery.Status.values:
            deliveries.add_metric([status], by_status.get(status, 0))
        yield deliveries
        # Every attempt but a delivery's successful last one failed.
        totals = WebhookDelivery.objects.order_by().aggregate(
            attempts=Sum("attempts"),
            delivered=Count("pk", filter=Q(status=WebhookDelivery.Status.DELIVERED)),
        )
        failures = CounterMetricFamily(
            "multimail_webhook_delivery_failures",
            "Failed webhook delivery attempts (HTTP errors, timeouts, refused targets) of the "
            "deliveries still stored.",
        )
        failures.add_metric([], (totals["attempts"] or 0) - totals["delivered"])
        yield failures
