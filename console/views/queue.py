"""The pending queue: every held email, decided inline, refreshed by polling; and the stop
switch, which holds all of the account's outbound mail."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
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
    pending_count,
    pending_review_get,
    pending_review_many,
    pending_review_page,
    pending_summary,
    undelivered_notifications,
)
from oversight.services import (
    MAX_BATCH,
    EmailChanged,
    decision_outcome,
    email_decide,
    emails_decide,
)


@require_GET
@operator_required
@csp_override(EMAIL_PAGE_CSP)
def queue(request: ConsoleRequest) -> HttpResponse:
    summary = pending_summary(account=request.account)
    polling = request.GET.get("v") is not None
    if polling and request.GET["v"] == summary.version:
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
    images_for = request.GET.get("images", "")
    _annotate(page.items, hours=request.account.approval_expiry_hours)
    for email in page.items:
        email.rendered = email_body_render(email=email, load_images=images_for == email.pk)
    context = {
        "items": page.items,
        "next_cursor": page.next_cursor,
        "newest_first": newest_first,
        "expiry_form": form_kept(
            request,
            ApprovalExpiryForm,
            initial={"approval_expiry_hours": request.account.approval_expiry_hours},
        ),
        "version": summary.version,
        "section": "queue",
        "pending_count": summary.count,
        "oob": polling,
    }
    return render_page(request, "console/queue.html", context, partial="queue-list")


@require_GET
@operator_required
@csp_override(EMAIL_PAGE_CSP)
def queue_item(request: ConsoleRequest, email_id: str) -> HttpResponse:
    """One held email (for "load images"); a decided or unknown one sends back to the queue."""
    email = pending_review_get(account=request.account, email_id=email_id)
    if email is None:
        messages.info(request, "That email is no longer waiting for a decision.")
        if request.htmx:
            # A fragment swap would nest the whole queue page inside the item.
            return HttpResponseClientRedirect(reverse("console-queue"))
        return redirect("console-queue")
    return _item_page(request, email, load_images=request.GET.get("images") == "1")


def _annotate(emails: list[Email], *, hours: int) -> None:
    """What a card shows beside the email: its decision facts (their version is what its
    forms decide on), and the notifications about it that did not reach the operator."""
    facts = decision_facts_bulk(emails=emails)
    undelivered = undelivered_notifications(email_ids=[email.pk for email in emails])
    for email in emails:
        email.facts = facts[email.pk]  # type: ignore[attr-defined]
        email.undelivered = undelivered.get(email.pk, [])  # type: ignore[attr-defined]
        # When it was held, and when it expires unless decided (None: never).
        email.expires_at = held_deadline(email=email, hours=hours)  # type: ignore[attr-defined]


def _item_page(
    request: ConsoleRequest, email: Email, *, load_images: bool = False, notice: str = ""
) -> HttpResponse:
    _annotate([email], hours=request.account.approval_expiry_hours)
    email.rendered = email_body_render(email=email, load_images=load_images)  # type: ignore[attr-defined]
    return render_page(
        request,
        "console/queue.html",
        {"items": [email], "item": email, "section": "queue", "version": "", "notice": notice},
        partial="queue-item",
    )


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
    decided = None
    outcome = ""
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
        if request.htmx and not from_email_page:
            current = pending_review_get(account=request.account, email_id=email_id)
            if current is not None:
                return _item_page(request, current, notice=STALE_NOTICE)
        messages.warning(request, STALE_NOTICE, extra_tags="code-conflict stale")
        return _back(request, email_id)
    except ApiError as error:
        error_message(request, error)
    else:
        decided = decision.email
        result = decision_outcome(decision=decision)
        outcome = result.message
        level = messages.SUCCESS if result.as_decided else messages.WARNING
        messages.add_message(request, level, f"{outcome} ({decided.subject or 'no subject'})")
    if not request.htmx or from_email_page:
        return _back(request, email_id)
    return render_page(
        request,
        "console/queue.html",
        {
            "decided": decided,
            "outcome": outcome,
            "decided_id": email_id,
            "oob": True,
            "pending_count": pending_count(account=request.account),
        },
        partial="decided-item",
    )


def _back(request: ConsoleRequest, email_id: str) -> HttpResponse:
    """Where a decision returns when it is not swapped into the queue: the page its form
    was on (the email page names its mailbox; that page checks the tenant itself)."""
    mailbox_id = request.POST.get("mailbox_id", "")
    if request.POST.get("from") == "email" and mailbox_id.isalnum():
        return redirect("console-email", mailbox_id=mailbox_id, email_id=email_id)
    return redirect("console-queue")


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
