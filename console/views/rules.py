"""A mailbox's oversight rules: the editor, and a dry run of the typed rules against the
mailbox's latest emails. The operator's save applies at once, loosening included (the
operator is who an agent's key asks)."""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from console.access import ConsoleRequest, error_message, operator_required
from console.forms import RulesForm
from console.htmx import render_page
from console.prg import form_keep, form_kept
from multimail.errors import ApiError
from multimail.exceptions import request_id_of
from oversight import admin_actions
from oversight.admin_actions import PendingApproval, admin_action_run
from oversight.dry_run import DRY_RUN_EMAILS, DryRunRow, rules_dry_run
from oversight.rule_changes import mailbox_for_rules
from oversight.rules import rules_parse


@require_GET
@operator_required
def rules_page(request: ConsoleRequest, mailbox_id: str) -> HttpResponse:
    """The editor; with ``?rules=`` (the Dry run button) also what those rules would do.
    HTMX asks for the dry-run table alone."""
    try:
        mailbox = mailbox_for_rules(actor=request.actor, mailbox_id=mailbox_id)
    except ApiError as error:
        error_message(request, error)
        return redirect("console-mailboxes")
    current = json.dumps(mailbox.oversight_rules, indent=2)
    rows: list[DryRunRow] | None = None
    dry_run_error = ""
    if "rules" in request.GET:
        form = RulesForm(request.GET)
        if form.is_valid():
            try:
                rows = rules_dry_run(mailbox=mailbox, rules=rules_parse(form.cleaned_data["rules"]))
            except ApiError as error:
                dry_run_error = error.message
        else:
            dry_run_error = " ".join(str(message) for message in form.errors.get("rules", []))
    else:
        form = form_kept(request, RulesForm, initial={"rules": current})
    context = {
        "mailbox": mailbox,
        "form": form,
        "rows": rows,
        "dry_run_error": dry_run_error,
        "dry_run_count": DRY_RUN_EMAILS,
        "section": "mailboxes",
    }
    return render_page(request, "console/rules.html", context, partial="dry-run")


@require_POST
@operator_required
def rules_save(request: ConsoleRequest, mailbox_id: str) -> HttpResponse:
    form = RulesForm(request.POST)
    if form.is_valid():
        try:
            outcome = admin_action_run(
                actor=request.actor,
                action=admin_actions.MAILBOX_RULES_REPLACE,
                params=admin_actions.MailboxRulesReplace(
                    mailbox_id=mailbox_id, rules=form.cleaned_data["rules"]
                ),
                approval_code=None,
                request_id=request_id_of(request),
            )
        except ApiError as error:
            error_message(request, error)
        else:
            # The gate runs an operator's change at once; it never asks them for a code.
            if not isinstance(outcome, PendingApproval):
                count = len(outcome.oversight_rules)
                messages.success(request, f"Saved {count} rule{'s' if count != 1 else ''}.")
                return redirect("console-mailbox-rules", mailbox_id=mailbox_id)
    form_keep(
        request, form, path=reverse("console-mailbox-rules", kwargs={"mailbox_id": mailbox_id})
    )
    return redirect("console-mailbox-rules", mailbox_id=mailbox_id)
