"""Custom domains, webhooks, the suppression list, usage and billing."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.plans import limits_for
from accounts.selectors import plan_usage
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
from console.confirmation import (
    Confirmation,
    confirmation_page,
    confirmation_redirect,
    is_confirmed,
)
from console.csp import BILLING_PAGE_CSP
from console.forms import (
    CheckoutForm,
    DomainForm,
    SuppressionAddForm,
    SuppressionSearchForm,
    WebhookForm,
)
from console.htmx import render_page
from console.prg import form_keep, form_kept
from mailboxes.models import Domain, WebhookEvent
from mailboxes.selectors import (
    domain_list,
    suppression_list,
    webhook_delivery_get,
    webhook_delivery_list,
    webhook_subscription_list,
)
from mailboxes.services.domains import domain_create, domain_delete, domain_get, domain_verify
from mailboxes.services.suppression import suppression_add_by_operator, suppression_remove
from mailboxes.services.webhooks import (
    delivery_body,
    subscription_create,
    subscription_delete,
    subscription_get,
    subscription_rotate_secret,
    subscription_test,
    webhook_delivery_replay,
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
    if request.method == "POST":
        form = DomainForm(request.POST)
        if form.is_valid():
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
        form_keep(request, form)
        return redirect("console-domains")
    return render_page(
        request,
        "console/domains.html",
        {
            "form": form_kept(request, DomainForm),
            "domains": domain_list(account=request.account),
            "section": "domains",
        },
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


@require_http_methods(["GET", "POST"])
@operator_required
def domain_delete_view(request: ConsoleRequest, domain_id: str) -> HttpResponse:
    """GET asks for confirmation; only a confirmed POST removes the domain."""
    if request.method == "GET":
        try:
            domain = domain_get(account=request.account, domain_id=domain_id)
        except ApiError as error:
            error_message(request, error)
            return redirect("console-domains")
        return confirmation_page(
            request,
            Confirmation(
                title=f"Remove {domain.domain}?",
                detail="Mailboxes on this domain stop sending and receiving through it. "
                "Adding it again means setting up its DNS records again.",
                button=f"Remove {domain.domain}",
                cancel_url=reverse("console-domain", args=[domain_id]),
                section="domains",
            ),
        )
    if not is_confirmed(request):
        return confirmation_redirect(request)
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
    if request.method == "POST":
        form = WebhookForm(request.POST, event_choices=EVENT_CHOICES)
        if form.is_valid():
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
        form_keep(request, form)
        return redirect("console-webhooks")
    try:
        page = cursor_paginate(
            webhook_subscription_list(account=request.account), request.GET, default_limit=50
        )
    except ApiError as error:
        error_message(request, error)
        return redirect("console-webhooks")
    return render_page(
        request,
        "console/webhooks.html",
        {
            "form": form_kept(request, WebhookForm, event_choices=EVENT_CHOICES),
            "page": page,
            "section": "webhooks",
        },
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


# Deleting loses the subscription; rotating starts the old secret's 24-hour countdown.
_WEBHOOK_CONFIRMATIONS = {
    "delete": (
        "Delete this webhook?",
        "Events stop being delivered to {url} at once. This cannot be undone.",
        "Delete webhook",
    ),
    "rotate": (
        "Rotate the signing secret?",
        "A new secret signs from now on; the old one also signs for 24 hours, then "
        "{url} must check signatures with the new one.",
        "Rotate secret",
    ),
}


@require_http_methods(["GET", "POST"])
@operator_required
def webhook_action(request: ConsoleRequest, webhook_id: str) -> HttpResponse:
    """Rotate the secret, send a test event, or delete. Rotating and deleting are confirmed
    first: GET asks, and an unconfirmed POST is sent there."""
    data = request.POST if request.method == "POST" else request.GET
    action = data.get("action", "")
    actor = request.actor
    if action in _WEBHOOK_CONFIRMATIONS and (request.method == "GET" or not is_confirmed(request)):
        if request.method == "POST":
            return confirmation_redirect(request)
        try:
            subscription = subscription_get(account=request.account, subscription_id=webhook_id)
        except ApiError as error:
            error_message(request, error)
            return redirect("console-webhooks")
        title, detail, button = _WEBHOOK_CONFIRMATIONS[action]
        return confirmation_page(
            request,
            Confirmation(
                title=title,
                detail=detail.format(url=subscription.url),
                button=button,
                cancel_url=reverse("console-webhook", args=[webhook_id]),
                section="webhooks",
            ),
        )
    if request.method == "GET":
        return redirect("console-webhook", webhook_id=webhook_id)
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


@never_cache
@require_GET
@operator_required
def delivery_detail(request: ConsoleRequest, webhook_id: str, delivery_id: str) -> HttpResponse:
    """One delivery's last attempt as it went over the wire: the request and the answer."""
    try:
        subscription = subscription_get(account=request.account, subscription_id=webhook_id)
        delivery = webhook_delivery_get(subscription=subscription, delivery_id=delivery_id)
    except ApiError as error:
        error_message(request, error)
        return redirect("console-webhooks")
    return render_page(
        request,
        "console/webhook_delivery.html",
        {
            "webhook": subscription,
            "delivery": delivery,
            "body": json.dumps(json.loads(delivery_body(delivery)), indent=2),
            "section": "webhooks",
        },
    )


@require_POST
@operator_required
def delivery_replay(request: ConsoleRequest, webhook_id: str, delivery_id: str) -> HttpResponse:
    try:
        replay = webhook_delivery_replay(actor=request.actor, delivery_id=delivery_id)
    except ApiError as error:
        error_message(request, error)
        return redirect("console-webhook", webhook_id=webhook_id)
    messages.success(
        request, "Replay queued: the event is sent again as a new delivery, shown below."
    )
    return redirect("console-webhook-delivery", webhook_id=webhook_id, delivery_id=replay.pk)


# --- Suppression ----------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@operator_required
def suppression(request: ConsoleRequest) -> HttpResponse:
    """The list, searched by address or domain; a POST adds an address by hand."""
    if request.method == "POST":
        form = SuppressionAddForm(request.POST)
        if form.is_valid():
            try:
                entry = suppression_add_by_operator(
                    actor=request.actor,
                    address=form.cleaned_data["address"],
                    reason=form.cleaned_data["reason"],
                    note=form.cleaned_data["note"],
                    request_id=request_id_of(request),
                )
            except ApiError as error:
                error_message(request, error)
            else:
                messages.success(
                    request,
                    f"{entry.email_address} is suppressed ({entry.get_reason_display()}): "
                    "mail to it is refused.",
                )
                return redirect("console-suppression")
        form_keep(request, form)
        return redirect("console-suppression")
    search = SuppressionSearchForm(request.GET)
    query = search.cleaned_data["q"] if search.is_valid() else ""
    try:
        page = suppression_list(account=request.account, params=request.GET, search=query)
    except ApiError as error:
        error_message(request, error)
        return redirect("console-suppression")
    return render_page(
        request,
        "console/suppression.html",
        {
            "page": page,
            "search": search,
            "query": query,
            "more_query": urlencode({"q": query, "cursor": page.next_cursor or ""}),
            "form": form_kept(request, SuppressionAddForm),
            "section": "suppression",
        },
    )


@require_http_methods(["GET", "POST"])
@operator_required
def suppression_remove_view(request: ConsoleRequest) -> HttpResponse:
    """GET asks for confirmation; only a confirmed POST lifts the suppression."""
    if request.method == "GET":
        address = request.GET.get("address", "")
        return confirmation_page(
            request,
            Confirmation(
                title=f"Let {address} receive mail again?",
                detail=f"Mail to {address} is no longer stopped. If it was suppressed for a "
                "complaint or an unsubscribe, sending to it again can hurt deliverability.",
                button="Remove from the list",
                cancel_url=reverse("console-suppression"),
                section="suppression",
            ),
        )
    if not is_confirmed(request):
        return confirmation_redirect(request)
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
            "metrics": plan_usage(account=account),
            "plan_title": limits_for(account.plan).title,
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


@require_http_methods(["GET", "POST"])
@operator_required
def billing_action(request: ConsoleRequest) -> HttpResponse:
    """Upgrade (redirect to Stripe Checkout), open the portal, or cancel at period end.
    Cancelling is confirmed first: GET asks, and an unconfirmed POST is sent there."""
    account = request.account
    if request.method == "GET":
        if request.GET.get("action") != "cancel":
            return redirect("console-billing")
        return confirmation_page(
            request,
            Confirmation(
                title="Cancel the subscription?",
                detail="The plan stays until the end of the paid period, then the account "
                "moves to the free plan and its limits.",
                button="Cancel at period end",
                cancel_url=reverse("console-billing"),
                section="billing",
            ),
        )
    action = request.POST.get("action", "")
    if action == "cancel" and not is_confirmed(request):
        return confirmation_redirect(request)
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
