"""Custom domains, webhooks, the suppression list, usage and billing."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.views.decorators.cache import never_cache
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing.models import UsageEventType
from billing.selectors import (
    billing_overview,
    usage_day_series,
    usage_summary,
    usage_window,
)
from billing.services.checkout import checkout_start, portal_session_create, subscription_cancel
from console.access import ConsoleRequest, error_message, operator_required
from console.charts import bar_chart
from console.csp import BILLING_PAGE_CSP
from console.forms import CheckoutForm, DomainForm, WebhookForm
from console.htmx import render_page
from mailboxes.models import Domain, WebhookEvent
from mailboxes.selectors import (
    domain_list,
    suppression_list,
    webhook_delivery_list,
    webhook_subscription_list,
)
from mailboxes.services.domains import domain_create, domain_delete, domain_get, domain_verify
from mailboxes.services.suppression import suppression_remove
from mailboxes.services.webhooks import (
    subscription_create,
    subscription_delete,
    subscription_get,
    subscription_rotate_secret,
    subscription_test,
    webhook_delivery_retry,
)
from multimail.epoch import from_epoch_ms
from multimail.errors import ApiError
from multimail.exceptions import request_id_of
from multimail.pagination import cursor_paginate

EVENT_CHOICES = [(event.value, event.value) for event in WebhookEvent]


# --- Domains --------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@operator_required
def domains(request: ConsoleRequest) -> HttpResponse:
    form = DomainForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            created = domain_create(
                actor=request.actor,
                domain=form.cleaned_data["domain"],
                request_id=request_id_of(request),
            )
        except ApiError as error:
            error_message(request, error)
        else:
            messages.success(request, f"{created.domain} added: set the DNS records below.")
            return redirect("console-domain", domain_id=created.pk)
    rows = domain_list(account=request.account)
    return render_page(
        request, "console/domains.html", {"form": form, "domains": rows, "section": "domains"}
    )


@require_GET
@operator_required
def domain_detail(request: ConsoleRequest, domain_id: str) -> HttpResponse:
    try:
        domain = domain_get(account=request.account, domain_id=domain_id)
    except ApiError as error:
        error_message(request, error)
        return redirect("console-domains")
    return render_page(request, "console/domain.html", {"domain": domain, "section": "domains"})


@require_POST
@operator_required
def domain_verify_view(request: ConsoleRequest, domain_id: str) -> HttpResponse:
    domain = None
    try:
        domain = domain_verify(actor=request.actor, domain_id=domain_id)
    except ApiError as error:
        error_message(request, error)
    else:
        if domain.status == Domain.Status.ACTIVE:
            messages.success(request, f"{domain.domain} is verified and active.")
        else:
            messages.warning(
                request,
                "Some records are not visible yet. DNS changes can take a while; check again "
                "later.",
            )
    if not request.htmx or domain is None:
        return redirect("console-domain", domain_id=domain_id)
    return render_page(
        request,
        "console/domain.html",
        {"domain": domain, "section": "domains", "oob": True},
        partial="domain-status",
    )


@require_POST
@operator_required
def domain_delete_view(request: ConsoleRequest, domain_id: str) -> HttpResponse:
    try:
        domain_delete(
            actor=request.actor,
            domain_id=domain_id,
            request_id=request_id_of(request),
        )
    except ApiError as error:
        error_message(request, error)
        return redirect("console-domain", domain_id=domain_id)
    messages.success(request, "Domain removed.")
    return redirect("console-domains")


# --- Webhooks -------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@operator_required
def webhooks(request: ConsoleRequest) -> HttpResponse:
    form = WebhookForm(request.POST or None, event_choices=EVENT_CHOICES)
    if request.method == "POST" and form.is_valid():
        try:
            created = subscription_create(
                actor=request.actor,
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
                request_id=request_id_of(request),
            )
        except ApiError as error:
            error_message(request, error)
        else:
            messages.success(request, "Webhook created. Its signing secret is shown below.")
            return redirect("console-webhook", webhook_id=created.pk)
    rows = webhook_subscription_list(account=request.account)
    return render_page(
        request,
        "console/webhooks.html",
        {"form": form, "webhooks": rows, "section": "webhooks"},
    )


@never_cache
@require_GET
@operator_required
def webhook_detail(request: ConsoleRequest, webhook_id: str) -> HttpResponse:
    try:
        subscription = subscription_get(
            account=request.account,
            subscription_id=webhook_id,
        )
        page = cursor_paginate(
            webhook_delivery_list(subscription=subscription),
            request.GET,
            default_limit=50,
        )
    except ApiError as error:
        error_message(request, error)
        return redirect("console-webhooks")
    return render_page(
        request,
        "console/webhook.html",
        {"webhook": subscription, "page": page, "section": "webhooks"},
    )


@require_POST
@operator_required
def webhook_action(request: ConsoleRequest, webhook_id: str) -> HttpResponse:
    """Rotate the secret, send a test event, or delete."""
    action = request.POST.get("action", "")
    actor = request.actor
    try:
        if action == "rotate":
            subscription_rotate_secret(
                actor=actor, subscription_id=webhook_id, request_id=request_id_of(request)
            )
            messages.success(request, "New secret issued; the old one also signs for 24 hours.")
        elif action == "test":
            subscription_test(actor=actor, subscription_id=webhook_id)
            messages.success(request, "Test event queued; it appears in the history below.")
        elif action == "delete":
            subscription_delete(
                actor=actor, subscription_id=webhook_id, request_id=request_id_of(request)
            )
            messages.success(request, "Webhook deleted.")
            return redirect("console-webhooks")
        else:
            messages.error(request, "Unknown action.")
    except ApiError as error:
        error_message(request, error)
        return redirect("console-webhooks")
    return redirect("console-webhook", webhook_id=webhook_id)


@require_POST
@operator_required
def delivery_retry(request: ConsoleRequest, webhook_id: str, delivery_id: str) -> HttpResponse:
    try:
        webhook_delivery_retry(actor=request.actor, delivery_id=delivery_id)
    except ApiError as error:
        error_message(request, error)
    else:
        messages.success(request, "Retry queued.")
    return redirect("console-webhook", webhook_id=webhook_id)


# --- Suppression ----------------------------------------------------------------------


@require_GET
@operator_required
def suppression(request: ConsoleRequest) -> HttpResponse:
    try:
        page = suppression_list(account=request.account, params=request.GET)
    except ApiError as error:
        error_message(request, error)
        return redirect("console-suppression")
    return render_page(
        request, "console/suppression.html", {"page": page, "section": "suppression"}
    )


@require_POST
@operator_required
def suppression_remove_view(request: ConsoleRequest) -> HttpResponse:
    address = request.POST.get("address", "")
    try:
        suppression_remove(
            actor=request.actor,
            address=address,
            request_id=request_id_of(request),
        )
    except ApiError as error:
        error_message(request, error)
    else:
        messages.success(request, f"{address} may receive mail again.")
    return redirect("console-suppression")


# --- Usage ----------------------------------------------------------------------------


@require_GET
@operator_required
def usage(request: ConsoleRequest) -> HttpResponse:
    account = request.account
    period = "previous" if request.GET.get("period") == "previous" else "current"
    event_type = request.GET.get("event_type", UsageEventType.EMAILS_SENT)
    if event_type not in UsageEventType.values:
        event_type = UsageEventType.EMAILS_SENT
    start_ms, end_ms = usage_window(account=account, period=period, start_ms=None, end_ms=None)
    summary = usage_summary(account=account, start_ms=start_ms, end_ms=end_ms)
    series = usage_day_series(
        account=account, start_ms=start_ms, end_ms=end_ms, event_type=event_type
    )
    return render_page(
        request,
        "console/usage.html",
        {
            "summary": [(UsageEventType(key).label, summary[key]) for key in UsageEventType.values],
            "chart": bar_chart(series, title=UsageEventType(event_type).label),
            "series": series,
            "event_type": event_type,
            "event_types": UsageEventType.choices,
            "period": period,
            "period_start": from_epoch_ms(start_ms),
            "period_end": from_epoch_ms(end_ms),
            "section": "usage",
        },
    )


# --- Billing --------------------------------------------------------------------------


@require_GET
@operator_required
@csp_override(BILLING_PAGE_CSP)
def billing(request: ConsoleRequest) -> HttpResponse:
    checkout = request.GET.get("checkout")
    if checkout == "success":
        messages.success(request, "Payment received: the plan changes as soon as Stripe confirms.")
    elif checkout == "cancelled":
        messages.info(request, "Checkout cancelled; nothing changed.")
    overview = billing_overview(account=request.account)
    return render_page(request, "console/billing.html", {"billing": overview, "section": "billing"})


@require_POST
@operator_required
def billing_action(request: ConsoleRequest) -> HttpResponse:
    """Upgrade (redirect to Stripe Checkout), open the portal, or cancel at period end."""
    account = request.account
    action = request.POST.get("action", "")
    try:
        if action == "checkout":
            form = CheckoutForm(request.POST)
            if not form.is_valid():
                messages.error(request, "Choose one of the paid plans and an interval.")
                return redirect("console-billing")
            result = checkout_start(
                account=account,
                plan=form.cleaned_data["plan"],
                interval=form.cleaned_data["interval"],
            )
            if result.get("checkout_url"):
                return HttpResponseRedirect(result["checkout_url"])
            messages.success(request, "Plan changed.")
        elif action == "portal":
            return HttpResponseRedirect(portal_session_create(account=account))
        elif action == "cancel":
            done = subscription_cancel(
                actor=request.actor,
                request_id=request_id_of(request),
            )
            messages.success(
                request, f"Subscription cancelled; the plan stays until {done['access_until']}."
            )
        else:
            messages.error(request, "Unknown billing action.")
    except ApiError as error:
        error_message(request, error)
    return redirect("console-billing")
