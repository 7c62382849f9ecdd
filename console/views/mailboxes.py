"""Mailboxes: list with today's sends, create and delete (the API's services and limits),
per-mailbox emails (the API's filter), threads, oversight mode and settings."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from console.access import ConsoleRequest, error_message, operator_required
from console.actions import operator_action_run
from console.confirmation import (
    Confirmation,
    confirmation_page,
    confirmation_redirect,
    is_confirmed,
)
from console.csp import EMAIL_PAGE_CSP
from console.forms import MailboxCreateForm, MailboxSettingsForm, ModeForm
from console.htmx import render_page
from console.prg import feedback_keep, feedback_kept, form_keep, form_kept
from console.rendering import email_body_render
from mailboxes.filters import EmailFilter
from mailboxes.models import Direction, EmailStatus, Mailbox, OversightMode
from mailboxes.selectors import (
    attachment_get,
    deleted_mailboxes,
    email_get,
    email_list,
    mailbox_rows,
    operator_mailbox_get,
    thread_get,
)
from mailboxes.services.mailboxes import mailbox_delete, mailbox_get, mailbox_update
from multimail.errors import ApiError
from multimail.exceptions import request_id_of
from oversight import admin_actions
from oversight.facts import decision_facts
from oversight.policy import PENDING_STATUSES, is_upgrade
from oversight.selectors import undelivered_notifications
from oversight.services import email_retry, mailbox_set_mode
from oversight.source import email_raw_source


def _mailbox_or_redirect(
    request: ConsoleRequest, mailbox_id: str, *, for_change: bool = False
) -> Mailbox | None:
    """Reading includes soft-deleted mailboxes; changes only active ones."""
    account = request.account
    try:
        if for_change:
            return mailbox_get(account=account, mailbox_id=mailbox_id)
        return operator_mailbox_get(account=account, mailbox_id=mailbox_id)
    except ApiError as error:
        error_message(request, error)
        return None


@require_http_methods(["GET", "POST"])
@operator_required
def mailbox_list(request: ConsoleRequest) -> HttpResponse:
    """The mailboxes, and a new one by POST /v1/mailboxes's path (its checks and limits)."""
    account = request.account
    if request.method == "POST":
        form = MailboxCreateForm(request.POST)
        if not form.is_valid():
            form_keep(request, form)
            return redirect("console-mailboxes")
        try:
            mailbox = operator_action_run(
                request,
                admin_actions.MAILBOX_CREATE,
                admin_actions.MailboxCreate(
                    address_local=form.cleaned_data["address_local"],
                    display_name=form.cleaned_data["display_name"],
                    webhook_url=form.cleaned_data["webhook_url"] or None,
                    ai_disclosure=form.cleaned_data["ai_disclosure"],
                ),
            )
        except ApiError as error:
            form_keep(request, form, error=error)
            feedback_keep(request, "create", error.message, error=True)
            return redirect("console-mailboxes")
        messages.success(
            request,
            f"{mailbox.address} is created in {OversightMode(mailbox.oversight_mode).label} "
            "mode: its outbound mail waits for you until you change the mode.",
        )
        return redirect("console-mailbox", mailbox_id=mailbox.pk)
    return render_page(
        request,
        "console/mailboxes.html",
        {
            "rows": mailbox_rows(account=account),
            "deleted": deleted_mailboxes(account=account),
            "create_form": form_kept(request, MailboxCreateForm),
            "feedback": feedback_kept(request),
            "section": "mailboxes",
        },
    )


@require_http_methods(["GET", "POST"])
@operator_required
def mailbox_delete_view(request: ConsoleRequest, mailbox_id: str) -> HttpResponse:
    """DELETE /v1/mailboxes/{id} from the console: GET asks, only a confirmed POST deletes."""
    mailbox = _mailbox_or_redirect(request, mailbox_id, for_change=True)
    if mailbox is None:
        return redirect("console-mailboxes")
    if request.method == "GET":
        return confirmation_page(
            request,
            Confirmation(
                title=f"Delete {mailbox.address}?",
                detail="It stops sending and receiving at once, and its queued outbound "
                "mail is cancelled. Its mail stays readable here; the address is never "
                "given out again. This cannot be undone.",
                button="Delete mailbox",
                cancel_url=reverse("console-mailbox", args=[mailbox.pk]),
                section="mailboxes",
            ),
        )
    if not is_confirmed(request):
        return confirmation_redirect(request)
    try:
        mailbox_delete(
            actor=request.actor, mailbox_id=mailbox.pk, request_id=request_id_of(request)
        )
    except ApiError as error:
        error_message(request, error)
        return redirect("console-mailbox", mailbox_id=mailbox.pk)
    messages.success(request, f"{mailbox.address} is deleted. Its mail stays readable.")
    return redirect("console-mailboxes")


@require_GET
@operator_required
def mailbox_detail(request: ConsoleRequest, mailbox_id: str) -> HttpResponse:
    mailbox = _mailbox_or_redirect(request, mailbox_id)
    if mailbox is None:
        return redirect("console-mailboxes")
    # Its form renders the inputs; the selector applies the same FilterSet, so a filter
    # validates and means the same as on GET /v1/mailboxes/{id}/emails.
    filter_form = EmailFilter(request.GET or None).form
    page = None
    try:
        page = email_list(mailbox=mailbox, params=request.GET, agent=False)
    except ApiError as error:
        error_message(request, error)
    context = {
        "mailbox": mailbox,
        "page": page,
        "filter_form": filter_form,
        "mode_form": ModeForm(initial={"mode": mailbox.oversight_mode}),
        "settings_form": MailboxSettingsForm(instance_values=mailbox),
        "section": "mailboxes",
        "query": request.GET.copy(),
    }
    return render_page(request, "console/mailbox.html", context, partial="email-rows")


@require_http_methods(["GET", "POST"])
@operator_required
def mailbox_mode(request: ConsoleRequest, mailbox_id: str) -> HttpResponse:
    """GET asks for confirmation of the change; only a confirmed POST makes it."""
    mailbox = _mailbox_or_redirect(request, mailbox_id, for_change=True)
    if mailbox is None:
        return redirect("console-mailboxes")
    form = ModeForm(request.POST if request.method == "POST" else request.GET)
    if not form.is_valid():
        messages.error(request, "Choose one of the oversight modes.")
        return redirect("console-mailbox", mailbox_id=mailbox_id)
    target = form.cleaned_data["mode"]
    if request.method == "GET":
        return confirmation_page(request, _mode_confirmation(mailbox, target))
    if not is_confirmed(request):
        return confirmation_redirect(request)
    try:
        # The operator may move either way at once: upgrades need no code in the console.
        updated = mailbox_set_mode(
            actor=request.actor,
            mailbox=mailbox,
            mode=form.cleaned_data["mode"],
            request_id=request_id_of(request),
        )
    except ApiError as error:
        error_message(request, error)
    else:
        messages.success(
            request,
            f"{updated.address} is now {OversightMode(updated.oversight_mode).label}.",
        )
    return redirect("console-mailbox", mailbox_id=mailbox_id)


def _mode_confirmation(mailbox: Mailbox, target: str) -> Confirmation:
    current = OversightMode(mailbox.oversight_mode).label
    wanted = OversightMode(target).label
    if is_upgrade(mailbox.oversight_mode, target):
        effect = "The agent gets more autonomy: less of its mail waits for you."
    elif target == mailbox.oversight_mode:
        effect = "This is the mode it has now; nothing changes."
    else:
        effect = "The agent gets less autonomy: more of its mail waits for you."
    return Confirmation(
        title=f"Change {mailbox.address} to {wanted}?",
        detail=f"It is now {current}. {effect} The change takes effect at once.",
        button=f"Change to {wanted}",
        cancel_url=reverse("console-mailbox", args=[mailbox.pk]),
        section="mailboxes",
    )


@require_http_methods(["POST"])
@operator_required
def mailbox_settings(request: ConsoleRequest, mailbox_id: str) -> HttpResponse:
    mailbox = _mailbox_or_redirect(request, mailbox_id, for_change=True)
    if mailbox is None:
        return redirect("console-mailboxes")
    form = MailboxSettingsForm(request.POST, instance_values=mailbox)
    if not form.is_valid():
        for field, errors in form.errors.items():
            messages.error(
                request, f"{form.fields[field].label}: {' '.join(str(error) for error in errors)}"
            )
        return redirect("console-mailbox", mailbox_id=mailbox_id)
    try:
        mailbox_update(
            actor=request.actor,
            mailbox_id=mailbox.pk,
            changes=form.changes(),
            request_id=request_id_of(request),
        )
    except ApiError as error:
        error_message(request, error)
    else:
        messages.success(request, "Settings saved.")
    return redirect("console-mailbox", mailbox_id=mailbox_id)


@require_GET
@operator_required
@csp_override(EMAIL_PAGE_CSP)
def email_detail(request: ConsoleRequest, mailbox_id: str, email_id: str) -> HttpResponse:
    mailbox = _mailbox_or_redirect(request, mailbox_id)
    if mailbox is None:
        return redirect("console-mailboxes")
    try:
        email = email_get(mailbox=mailbox, email_id=email_id, agent=False)
    except ApiError as error:
        error_message(request, error)
        return redirect("console-mailbox", mailbox_id=mailbox_id)
    # The operator sees everything the mailbox holds, including mail the agent may not read.
    email.mailbox = mailbox
    rendered = email_body_render(email=email, load_images=request.GET.get("images") == "1")
    facts = decision_facts(email=email)
    return render_page(
        request,
        "console/email.html",
        {
            "mailbox": mailbox,
            "email": email,
            "rendered": rendered,
            "facts": facts,
            # A held email is decided here too, on the version this page shows.
            "held": email.status in PENDING_STATUSES,
            "undelivered": undelivered_notifications(email_ids=[email.pk]).get(email.pk, []),
            "retryable": email.status == EmailStatus.SEND_FAILED,
            "section": "mailboxes",
        },
    )


@require_POST
@operator_required
def email_retry_view(request: ConsoleRequest, mailbox_id: str, email_id: str) -> HttpResponse:
    """Send a failed email again: it is scanned and the oversight policy decides again."""
    try:
        email = email_retry(
            actor=request.actor, email_id=email_id, request_id=request_id_of(request)
        )
    except ApiError as error:
        error_message(request, error)
    else:
        messages.success(
            request,
            f"Sending {email.subject or 'the email'} again: it goes through the content scan "
            "and the oversight policy again (a gated mailbox holds it for your decision).",
        )
    return redirect("console-email", mailbox_id=mailbox_id, email_id=email_id)


@require_GET
@operator_required
def email_source(request: ConsoleRequest, mailbox_id: str, email_id: str) -> HttpResponse:
    """An outbound email's raw message as it would be sent, shown as plain text."""
    mailbox = _mailbox_or_redirect(request, mailbox_id)
    if mailbox is None:
        return redirect("console-mailboxes")
    try:
        email = email_get(mailbox=mailbox, email_id=email_id, agent=False)
    except ApiError as error:
        error_message(request, error)
        return redirect("console-mailbox", mailbox_id=mailbox_id)
    if email.direction != Direction.OUTBOUND:
        messages.info(request, "Only outbound mail has a source built here.")
        return redirect("console-email", mailbox_id=mailbox_id, email_id=email_id)
    email.mailbox = mailbox
    response = HttpResponse(email_raw_source(email=email), content_type="text/plain; charset=utf-8")
    # The source is the agent's content: never let a browser sniff it into a page.
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@operator_required
def thread_detail(request: ConsoleRequest, mailbox_id: str, thread_id: str) -> HttpResponse:
    mailbox = _mailbox_or_redirect(request, mailbox_id)
    if mailbox is None:
        return redirect("console-mailboxes")
    try:
        thread = thread_get(mailbox=mailbox, thread_id=thread_id, agent=False)
    except ApiError as error:
        error_message(request, error)
        return redirect("console-mailbox", mailbox_id=mailbox_id)
    return render_page(
        request,
        "console/thread.html",
        {"mailbox": mailbox, "thread": thread, "section": "mailboxes"},
    )


@require_GET
@operator_required
def attachment_download(
    request: ConsoleRequest, mailbox_id: str, email_id: str, filename: str
) -> HttpResponse:
    """The operator downloads an attachment (also of mail the agent may not read yet).
    Always as a download with a neutral type: an HTML or SVG file must never render as a
    page of this site."""
    mailbox = _mailbox_or_redirect(request, mailbox_id)
    if mailbox is None:
        return redirect("console-mailboxes")
    try:
        email = email_get(mailbox=mailbox, email_id=email_id, agent=False)
    except ApiError as error:
        error_message(request, error)
        return redirect("console-mailbox", mailbox_id=mailbox_id)
    try:
        attachment = attachment_get(email=email, filename=filename, agent=False)
    except ApiError:
        messages.error(request, "That attachment does not exist on this email.")
        return redirect("console-email", mailbox_id=mailbox_id, email_id=email_id)
    response = HttpResponse(bytes(attachment.content), content_type="application/octet-stream")
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=attachment.filename
    )
    return response
