"""The gate: check, then run the action or ask the operator; the console's approve and deny."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from accounts.actors import Actor
from accounts.codes import TypedCode, code_issue, code_redeem
from accounts.models import AdminActionRequest, AdminActionStatus, CodePurpose, OneTimeCode
from accounts.services import audit_record, operator_email_send
from multimail.errors import ApiError, not_found
from oversight.admin_actions.base import ActionParams, AdminAction, PendingApproval
from oversight.admin_actions.table import ACTIONS

APPROVAL_TTL = timedelta(hours=24)


def admin_action_run[P: ActionParams, R](
    *,
    actor: Actor,
    action: AdminAction[P, R],
    params: P,
    approval_code: TypedCode | None,
    request_id: str = "",
) -> R | PendingApproval:
    """Check, then do the action or ask the operator. Call it outside any
    ``transaction.atomic`` block: the pending request must commit to be approved."""
    params = action.check(actor, params)
    account = actor.account
    if (
        not actor.is_operator
        and (account.require_operator_approval or action.even_without_approvals)
        and action.needs_operator(actor, params)
    ):
        if not approval_code:
            return _request_approval(actor, action, params, request_id)
        _redeem(actor, action, params, approval_code, request_id)
    return action.execute(actor, params, request_id)


def _digest(action: str, params: dict[str, Any]) -> str:
    canonical = json.dumps({"action": action, "params": params}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _redeem[P: ActionParams, R](
    actor: Actor,
    action: AdminAction[P, R],
    params: P,
    approval_code: TypedCode,
    request_id: str,
) -> None:
    with transaction.atomic():
        record = code_redeem(
            account=actor.account,
            purpose=CodePurpose.ADMIN_ACTION,
            typed=approval_code,
            target=actor.account.pk,
            subject=_digest(action.name, params.to_json()),
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
            metadata={"action": action.name},
            request_id=request_id,
        )


def _request_approval[P: ActionParams, R](
    actor: Actor, action: AdminAction[P, R], params: P, request_id: str
) -> PendingApproval:
    account = actor.account
    stored = params.to_json()
    digest = _digest(action.name, stored)
    summary = action.summary(actor, params)
    with transaction.atomic():
        code, plaintext = code_issue(
            account=account,
            purpose=CodePurpose.ADMIN_ACTION,
            ttl=APPROVAL_TTL,
            subject=digest,
            payload={"action": action.name},
        )
        pending = AdminActionRequest.objects.create(
            account=account,
            action=action.name,
            params=stored,
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
            metadata={"action": action.name, "params": stored},
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
    return PendingApproval(approval_id=pending.pk)


@transaction.atomic
def admin_action_approve(*, actor: Actor, approval_id: str) -> AdminActionRequest:
    """The operator approves a pending request in the console: the action runs now."""
    pending = _locked_pending(actor, approval_id)
    action = ACTIONS.get(pending.action)
    if action is None:
        raise ApiError("conflict", f"No handler is registered for {pending.action}.")
    _close(pending, AdminActionStatus.COMPLETED, actor)
    audit_record(
        actor=actor,
        action="admin_action.approved",
        resource_type="admin_action",
        resource_id=pending.pk,
        metadata={"action": pending.action},
    )
    # Last, because deleting the account deletes this request (and its audit) with it.
    pending.result = _carry_out(actor, action, pending.params)
    AdminActionRequest.objects.filter(pk=pending.pk).update(result=pending.result)
    return pending


def _carry_out[P: ActionParams, R](
    actor: Actor, action: AdminAction[P, R], stored: Mapping[str, Any]
) -> Any:
    params = action.check(actor, action.params_type.from_json(stored))
    result = action.record(action.execute(actor, params, ""))
    # Results hold datetimes (an API key's created_at): stored as ISO 8601 text.
    return json.loads(json.dumps(result, cls=DjangoJSONEncoder))


DENY_REASON_MAX = 500


@transaction.atomic
def admin_action_deny(*, actor: Actor, approval_id: str, reason: str = "") -> AdminActionRequest:
    """The operator refuses; ``reason`` (optional) is kept with the decision and audited."""
    reason = " ".join(reason.split())
    if len(reason) > DENY_REASON_MAX:
        raise ApiError(
            "invalid_parameter",
            f"The reason is {len(reason)} characters; keep it to {DENY_REASON_MAX}.",
            param="reason",
        )
    pending = _locked_pending(actor, approval_id)
    pending.deny_reason = reason
    _close(pending, AdminActionStatus.DENIED, actor, extra_fields=["deny_reason"])
    metadata = {"action": pending.action}
    if reason:
        metadata["reason"] = reason
    audit_record(
        actor=actor,
        action="admin_action.denied",
        resource_type="admin_action",
        resource_id=pending.pk,
        metadata=metadata,
    )
    return pending


def admin_action_summary(*, actor: Actor, pending: AdminActionRequest) -> str:
    """What the request asks for, as the operator's email put it ("Create the API key 'ci'
    with scopes send, read"), for the console's list instead of its JSON parameters."""
    action = ACTIONS.get(pending.action)
    if action is None:
        return pending.action
    try:
        summary = action.summary(actor, action.params_type.from_json(pending.params))
    except (ApiError, TypeError, KeyError):
        # The resource it concerns is gone, or the request predates its parameters' shape:
        # approving will say why it cannot run; the list still names the action.
        return pending.action
    return summary[:1].upper() + summary[1:]


def _locked_pending(actor: Actor, approval_id: str) -> AdminActionRequest:
    pending = (
        AdminActionRequest.objects.select_for_update()
        .filter(account=actor.account, pk=approval_id)
        .first()
    )
    if pending is None:
        raise not_found("admin_action")
    if pending.status != AdminActionStatus.PENDING or pending.expires_at <= timezone.now():
        raise ApiError("conflict", "This request was already decided or has expired.")
    return pending


def _close(
    pending: AdminActionRequest,
    status: AdminActionStatus,
    actor: Actor,
    *,
    extra_fields: tuple[str, ...] | list[str] = (),
) -> None:
    pending.status = status
    pending.decided_at = timezone.now()
    pending.decided_by = actor.display
    pending.save(update_fields=["status", "decided_at", "decided_by", *extra_fields])
    if pending.code_id:
        OneTimeCode.objects.filter(pk=pending.code_id, used_at__isnull=True).update(
            used_at=timezone.now()
        )
