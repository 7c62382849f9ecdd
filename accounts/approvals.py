"""Operator approval of admin actions taken with an agent's API key.

A view calls ``admin_action_gate`` before doing a gated action (create mailbox, key or
webhook; revoke a key; add the oversight scope; account PATCH/DELETE; billing cancel):

* an operator (console, support) or an account with approvals turned off: returns at once;
* no ``approval_code``: records the request, emails the operator a code, and ends the
  request with 202 ``{"status": "pending_approval", ...}``;
* with ``approval_code``: the code must have been issued for this exact action and these
  parameters; it is used up and the call proceeds, or ``validation_error``.

The operator may also approve in the console: ``admin_action_approve`` runs the executor
the owning app registered for the action name (``register_admin_action``).

Call the gate outside any ``transaction.atomic`` block: its 202 is raised as an exception,
which would roll back an enclosing transaction and lose the pending request.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.actors import Actor
from accounts.codes import code_issue, code_redeem
from accounts.models import AdminActionRequest, AdminActionStatus, CodePurpose, OneTimeCode
from accounts.services import audit_record, operator_email_send
from multimail.errors import ApiError, not_found
from multimail.exceptions import EarlyResponse

APPROVAL_TTL = timedelta(hours=24)

Executor = Callable[[Actor, dict[str, Any]], dict[str, Any]]
_EXECUTORS: dict[str, Executor] = {}


def register_admin_action(action: str, executor: Executor) -> None:
    """Called from an app's ``AppConfig.ready``: how to carry out ``action`` when the
    operator approves it in the console."""
    _EXECUTORS[action] = executor


def _digest(action: str, params: dict[str, Any]) -> str:
    canonical = json.dumps({"action": action, "params": params}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def admin_action_gate(
    *,
    actor: Actor,
    action: str,
    params: dict[str, Any],
    summary: str,
    approval_code: str | None,
    request_id: str = "",
) -> None:
    account = actor.account
    if actor.is_operator or not account.require_operator_approval:
        return
    digest = _digest(action, params)
    if approval_code:
        with transaction.atomic():
            record = code_redeem(
                account=account,
                purpose=CodePurpose.ADMIN_ACTION,
                code=approval_code,
                subject=digest,
            )
            if record is None:
                raise ApiError(
                    "validation_error",
                    "The approval_code is wrong, expired or already used, or it was issued for "
                    "a different action or parameters. Repeat the exact call without "
                    "approval_code to email the operator a new code.",
                    param="approval_code",
                )
            AdminActionRequest.objects.filter(code=record, status=AdminActionStatus.PENDING).update(
                status=AdminActionStatus.COMPLETED,
                decided_at=timezone.now(),
                decided_by="approval_code",
            )
            audit_record(
                actor=actor,
                action="approval_code.used",
                resource_type="admin_action",
                resource_id=record.pk,
                metadata={"action": action},
                request_id=request_id,
            )
        return
    with transaction.atomic():
        code, plaintext = code_issue(
            account=account,
            purpose=CodePurpose.ADMIN_ACTION,
            ttl=APPROVAL_TTL,
            subject=digest,
            payload={"action": action},
        )
        pending = AdminActionRequest.objects.create(
            account=account,
            action=action,
            params=params,
            digest=digest,
            requested_by=actor.api_key,
            code=code,
            expires_at=code.expires_at,
        )
        audit_record(
            actor=actor,
            action="admin_action.requested",
            resource_type="admin_action",
            resource_id=pending.pk,
            metadata={"action": action, "params": params},
            request_id=request_id,
        )
        operator_email_send(
            account=account,
            subject=f"Approve: {summary}",
            text=(
                f"An agent using the API key {actor.display} asked to: {summary}.\n\n"
                f"If you expect this, give the agent this approval code:\n\n    {plaintext}\n\n"
                "or approve it in the console under Approvals. The code works once, for this "
                "exact action, for 24 hours. If you did not expect it, ignore this email or "
                "deny it in the console."
            ),
        )
    raise EarlyResponse(
        202,
        {
            "status": "pending_approval",
            "approval_id": pending.pk,
            "message": "An approval code was emailed to the operator. Repeat this call with "
            "approval_code to complete it.",
        },
    )


@transaction.atomic
def admin_action_approve(*, actor: Actor, request_id: str) -> AdminActionRequest:
    """The operator approves a pending request in the console: the action runs now."""
    pending = _locked_pending(actor, request_id)
    executor = _EXECUTORS.get(pending.action)
    if executor is None:
        raise ApiError("conflict", f"No handler is registered for {pending.action}.")
    pending.result = executor(actor, pending.params)
    _close(pending, AdminActionStatus.COMPLETED, actor)
    audit_record(
        actor=actor,
        action="admin_action.approved",
        resource_type="admin_action",
        resource_id=pending.pk,
        metadata={"action": pending.action},
    )
    return pending


@transaction.atomic
def admin_action_deny(*, actor: Actor, request_id: str) -> AdminActionRequest:
    pending = _locked_pending(actor, request_id)
    _close(pending, AdminActionStatus.DENIED, actor)
    audit_record(
        actor=actor,
        action="admin_action.denied",
        resource_type="admin_action",
        resource_id=pending.pk,
        metadata={"action": pending.action},
    )
    return pending


def _locked_pending(actor: Actor, request_id: str) -> AdminActionRequest:
    pending = (
        AdminActionRequest.objects.select_for_update()
        .filter(account=actor.account, pk=request_id)
        .first()
    )
    if pending is None:
        raise not_found("admin_action")
    if pending.status != AdminActionStatus.PENDING or pending.expires_at <= timezone.now():
        raise ApiError("conflict", "This request was already decided or has expired.")
    return pending


def _close(pending: AdminActionRequest, status: AdminActionStatus, actor: Actor) -> None:
    pending.status = status
    pending.decided_at = timezone.now()
    pending.decided_by = actor.display
    pending.save(update_fields=["status", "decided_at", "decided_by", "result"])
    if pending.code_id:
        OneTimeCode.objects.filter(pk=pending.code_id, used_at__isnull=True).update(
            used_at=timezone.now()
        )
