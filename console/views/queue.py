"""The review screen: the held emails as a filtered list with one open in a pane beside
it, decided there (the next one opens), refreshed by polling with every count; and the
stop switch, which holds all of the account's outbound mail."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from console.access import ConsoleRequest, error_message, operator_required
from console.confirmation import (
    Confirmation,
    confirmation_page,
    confirmation_redirect,
    is_confirmed,
)
from console.csp import EMAIL_PAGE_CSP
from console.forms import ApprovalExpiryForm, EditApproveForm
from console.htmx import render_page
from console.prg import form_keep, form_kept
from console.rendering import email_body_render
from mailboxes.models import Email
from multimail.errors import ApiError
from multimail.exceptions import request_id_of
from oversight import admin_actions, stop
from oversight.admin_actions import admin_action_run
from oversight.expiry import held_deadline
from oversight.facts import decision_facts_bulk
from oversight.selectors import (
    operator_counts,
    pending_review_get,
    pending_review_many,
    pending_review_next,
    pending_review_page,
    queue_filter,
    undelivered_notifications,
)
from oversight.services import (
    MAX_BATCH,
    EmailChanged,
    decision_outcome,
    email_decide,
    emails_decide,
)

# What a queue link carries from page to page: the filters, the order and the page.
QUEUE_FILTERS = ("mailbox", "direction", "recipient", "age", "order")


def _carried(params: QueryDict, *, cursor: bool = False) -> list[tuple[str, str]]:
    """The queue's filters (and page) set in ``params``, as (name, value) pairs."""
    names = (*QUEUE_FILTERS, "cursor") if cursor else QUEUE_FILTERS
    return [(name, str(params[name])) for name in names if params.get(name)]


@require_GET
@operator_required
@csp_override(EMAIL_PAGE_CSP)
def queue(request: ConsoleRequest) -> HttpResponse:
    """The review screen: the held emails as a list, the first of them open beside it."""
    return _queue_page(request)


@require_GET
@operator_required
@csp_override(EMAIL_PAGE_CSP)
def queue_item(request: ConsoleRequest, email_id: str) -> HttpResponse:
    """One held email in the review pane (HTMX), or the queue with it open (a plain link).
    A decided or unknown one sends back to the queue."""
    email = pending_review_get(account=request.account, email_id=email_id)
    if email is None:
        messages.info(request, "That email is no longer waiting for a decision.")
        if request.htmx:
            # A fragment swap would nest the whole queue page inside the pane.
            return HttpResponseClientRedirect(reverse("console-queue"))
        return redirect("console-queue")
    if not request.htmx:
        return _queue_page(request, selected=email)
    return _pane(request, email, load_images=request.GET.get("images") == "1")


@require_GET
@operator_required
def counts(request: ConsoleRequest) -> HttpResponse:
    """Every count of the navigation, for the pages other than the queue (which refreshes
    them with its list): 204 while nothing changed since the version the page has."""
    current = operator_counts(account=request.account)
    if request.GET.get("v") == current.version:
        return HttpResponse(status=204)
    # Only the fragment: not a page, so none of the layout's context.
    return render(request, "console/_counts.html", {"counts": current})


def _queue_page(request: ConsoleRequest, *, selected: Email | None = None) -> HttpResponse:
    current = operator_counts(account=request.account)
    polling = request.GET.get("v") is not None
    if polling and request.GET["v"] == current.version:
        # Nothing was held or decided since the last render: htmx swaps nothing on a 204.
        return HttpResponse(status=204)
    newest_first = request.GET.get("order") == "newest"
    try:
        page = pending_review_page(
            account=request.account, params=request.GET, oldest_first=not newest_first
        )
    except ApiError as error:
        error_message(request, error)
        return redirect("console-queue")
    _annotate(page.items, hours=request.account.approval_expiry_hours)
    context: dict[str, Any] = {
        "items": page.items,
        "next_cursor": page.next_cursor,
        "newest_first": newest_first,
        "list_query": urlencode(_carried(request.GET, cursor=True)),
        "filter_query": urlencode(_carried(request.GET)),
        "filters_carried": _carried(request.GET),
        "filters": queue_filter(account=request.account, params=request.GET),
        "counts": current,
        "section": "queue",
        "oob": polling,
        "on_queue": True,
    }
    if request.htmx:
        return render_page(request, "console/queue.html", context, partial="queue-list")
    # The pane opens the email asked for, else the first of the list (the next to expire).
    item: Email | None = selected or (page.items[0] if page.items else None)
    if item is not None:
        if item not in page.items:
            _annotate([item], hours=request.account.approval_expiry_hours)
        item.rendered = email_body_render(  # type: ignore[attr-defined]
            email=item, load_images=request.GET.get("images") == "1"
        )
    context["item"] = item
    context["expiry_form"] = form_kept(
        request,
        ApprovalExpiryForm,
        initial={"approval_expiry_hours": request.account.approval_expiry_hours},
    )
    return render_page(request, "console/queue.html", context)


def _annotate(emails: list[Email], *, hours: int) -> None:
    """What the queue shows beside each email: its decision facts (their version is what
    its forms decide on), and the notifications about it that did not reach the operator."""
    facts = decision_facts_bulk(emails=emails)
    undelivered = undelivered_notifications(email_ids=[email.pk for email in emails])
    for email in emails:
        email.facts = facts[email.pk]  # type: ignore[attr-defined]
        email.undelivered = undelivered.get(email.pk, [])  # type: ignore[attr-defined]
        # When it was held, and when it expires unless decided (None: never).
        email.expires_at = held_deadline(email=email, hours=hours)  # type: ignore[attr-defined]


def _pane(
    request: ConsoleRequest,
    email: Email | None,
    *,
    load_images: bool = False,
    notice: str = "",
    decided: dict[str, Any] | None = None,
) -> HttpResponse:
    """The review pane's fragment: ``email`` open for a decision (or nothing left), after
    the outcome of the decision just made when there was one. The filters of the queue the
    pane belongs to ride along in its forms, so the next email follows them too."""
    if email is not None:
        _annotate([email], hours=request.account.approval_expiry_hours)
        email.rendered = email_body_render(email=email, load_images=load_images)  # type: ignore[attr-defined]
    source = request.POST if request.method == "POST" else request.GET
    context: dict[str, Any] = {
        "item": email,
        "notice": notice,
        "section": "queue",
        "filter_query": urlencode(_carried(source)),
        "filters_carried": _carried(source),
        "on_queue": True,
        **(decided or {}),
    }
    if decided is not None:
        # A decision changed the counts: all of them come with the pane (out of band).
        context["counts"] = operator_counts(account=request.account)
    return render_page(request, "console/queue.html", context, partial="queue-pane")


STALE_NOTICE = (
    "This email changed after you opened it, so nothing was decided. It is shown again "
    "below as it is now: read it again before you decide."
)


@require_POST
@operator_required
def decide(request: ConsoleRequest, email_id: str) -> HttpResponse:
    action = request.POST.get("action", "")
    reason = request.POST.get("reason", "").strip()[:1000]
    # The form carries the version it showed: an email changed since is never decided.
    version = request.POST.get("version", "")
    from_email_page = request.POST.get("from") == "email"
    in_pane = request.htmx and not from_email_page
    # The email page's "edit, then approve" form: the corrections go with the approval.
    edits = None
    if request.POST.get("edit") == "1":
        form = EditApproveForm(request.POST)
        if not form.is_valid():
            for field, errors in form.errors.items():
                messages.error(request, f"{field}: {' '.join(map(str, errors))}")
            return _back(request, email_id)
        edits = dict(form.cleaned_data)
    try:
        decision = email_decide(
            actor=request.actor,
            email_id=email_id,
            action=action,
            version=version,
            reason=reason,
            request_id=request_id_of(request),
            edits=edits,
        )
    except EmailChanged:
        if in_pane:
            current = pending_review_get(account=request.account, email_id=email_id)
            if current is not None:
                return _pane(request, current, notice=STALE_NOTICE)
        messages.warning(request, STALE_NOTICE, extra_tags="code-conflict stale")
        return _back(request, email_id)
    except ApiError as error:
        if not in_pane:
            error_message(request, error)
            return _back(request, email_id)
        # The reason is shown where the operator is looking: at the top of the pane, with
        # the email again if it still waits (a bad action), else the next one.
        still_waiting = pending_review_get(account=request.account, email_id=email_id)
        return _pane(
            request,
            still_waiting or _next_to_review(request, email_id),
            decided={"decided_id": email_id, "problem": error, "still_waiting": still_waiting},
        )
    result = decision_outcome(decision=decision)
    if not in_pane:
        level = messages.SUCCESS if result.as_decided else messages.WARNING
        subject = decision.email.subject or "no subject"
        messages.add_message(request, level, f"{result.message} ({subject})")
        return _back(request, email_id)
    return _pane(
        request,
        _next_to_review(request, email_id),
        decided={
            "decided_id": email_id,
            "decided": decision.email,
            "outcome": result.message,
            "as_decided": result.as_decided,
        },
    )


def _next_to_review(request: ConsoleRequest, email_id: str) -> Email | None:
    """After a decision in the pane: the next held email in the queue's filters and order
    (the form carries them); a filter gone bad since falls back to the whole queue."""
    oldest_first = request.POST.get("order") != "newest"
    try:
        return pending_review_next(
            account=request.account,
            params=request.POST,
            after_id=email_id,
            oldest_first=oldest_first,
        )
    except ApiError:
        return pending_review_next(
            account=request.account, params={}, after_id=email_id, oldest_first=oldest_first
        )


def _back(request: ConsoleRequest, email_id: str) -> HttpResponse:
    """Where a decision returns when it is not swapped into the queue: the page its form
    was on (the email page names its mailbox; that page checks the tenant itself)."""
    mailbox_id = request.POST.get("mailbox_id", "")
    if request.POST.get("from") == "email" and mailbox_id.isalnum():
        return redirect("console-email", mailbox_id=mailbox_id, email_id=email_id)
    # Back to the same filters: the queue opens their first email, the next to decide.
    query = urlencode(_carried(request.POST))
    return redirect(f"{reverse('console-queue')}?{query}" if query else reverse("console-queue"))


# --- The stop switch ----------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@operator_required
def sending_stop_view(request: ConsoleRequest) -> HttpResponse:
    """GET asks for confirmation; a confirmed POST stops all of the account's sending."""
    if request.method == "GET":
        return confirmation_page(
            request,
            Confirmation(
                title="Stop all sending?",
                detail="No outbound email of this account will leave, from any mailbox, "
                "until you resume. Agents can still send: their mail is held with the "
                "reason 'sending stopped by the operator', and so is scheduled and queued "
                "mail when its time comes. Mail held by the stop waits for your decision "
                "after you resume.",
                button="Stop all sending",
                cancel_url=reverse("console-queue"),
                section="queue",
            ),
        )
    if not is_confirmed(request):
        return confirmation_redirect(request)
    stop.sending_stop(actor=request.actor, request_id=request_id_of(request))
    messages.warning(request, "Sending is stopped: no outbound email leaves until you resume.")
    return redirect("console-queue")


@require_http_methods(["GET", "POST"])
@operator_required
def sending_resume_view(request: ConsoleRequest) -> HttpResponse:
    """GET asks for confirmation; a confirmed POST lets the account's mail leave again."""
    if request.method == "GET":
        return confirmation_page(
            request,
            Confirmation(
                title="Resume sending?",
                detail="Outbound mail leaves again as each mailbox's oversight mode says. "
                "Mail the stop held stays in the queue: approve or reject it there.",
                button="Resume sending",
                cancel_url=reverse("console-queue"),
                section="queue",
            ),
        )
    if not is_confirmed(request):
        return confirmation_redirect(request)
    # The operator: the gate runs the action at once (a key would need their code).
    admin_action_run(
        actor=request.actor,
        action=admin_actions.SENDING_RESUME,
        params=admin_actions.SendingResume(),
        approval_code=None,
        request_id=request_id_of(request),
    )
    messages.success(
        request, "Sending resumed. Mail held by the stop is still waiting for your decision."
    )
    return redirect("console-queue")


@require_POST
@operator_required
def approval_expiry_view(request: ConsoleRequest) -> HttpResponse:
    """The account's approval expiry (an operator's setting: it runs at once)."""
    form = ApprovalExpiryForm(request.POST)
    form_keep(request, form, path=reverse("console-queue"))
    if not form.is_valid():
        return redirect("console-queue")
    hours = form.cleaned_data["approval_expiry_hours"]
    try:
        admin_action_run(
            actor=request.actor,
            action=admin_actions.ACCOUNT_UPDATE,
            params=admin_actions.AccountUpdate(changes={"approval_expiry_hours": hours}),
            approval_code=None,
            request_id=request_id_of(request),
        )
    except ApiError as error:
        error_message(request, error)
        return redirect("console-queue")
    messages.success(
        request,
        f"Held emails now expire after {hours} hours." if hours else "Held emails never expire.",
    )
    return redirect("console-queue")


# --- Batch decisions --------------------------------------------------------------------

BATCH_ACTIONS = {"approve": "Approve", "reject": "Reject"}


@require_http_methods(["GET", "POST"])
@operator_required
def batch_decide(request: ConsoleRequest) -> HttpResponse:
    """The selected emails, approved or rejected together. GET confirms, listing each
    email's recipients and subject with the version shown; only the confirmed POST decides,
    each email on the version its line showed."""
    source = request.GET if request.method == "GET" else request.POST
    action = source.get("action", "")
    email_ids = list(dict.fromkeys(source.getlist("email_id")))[:MAX_BATCH]
    if action not in BATCH_ACTIONS or not email_ids:
        messages.info(request, "Select at least one email first.")
        return redirect("console-queue")
    if request.method == "POST" and not is_confirmed(request):
        query = urlencode([("action", action), *(("email_id", pk) for pk in email_ids)])
        return redirect(f"{reverse('console-batch-decide')}?{query}")
    if request.method == "GET":
        emails = pending_review_many(account=request.account, email_ids=email_ids)
        if not emails:
            messages.info(request, "None of those emails is waiting for a decision any more.")
            return redirect("console-queue")
        _annotate(emails, hours=request.account.approval_expiry_hours)
        return render_page(
            request,
            "console/batch_confirm.html",
            {"emails": emails, "action": action, "verb": BATCH_ACTIONS[action], "section": "queue"},
        )
    results = emails_decide(
        actor=request.actor,
        email_ids=email_ids,
        action=action,
        versions={pk: source.get(f"version_{pk}", "") for pk in email_ids},
        reason=source.get("reason", "").strip()[:1000],
        request_id=request_id_of(request),
    )
    decided = [result for result in results if result.error is None]
    if decided:
        past = "Approved" if action == "approve" else "Rejected"
        messages.success(request, f"{past} {len(decided)} of {len(results)} emails.")
    for result in results:
        if result.error is not None:
            messages.warning(request, f"{result.email_id}: {result.error.message}")
    return redirect("console-queue")
