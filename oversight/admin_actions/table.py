"""The table: every admin action an agent's key needs the operator for, declared once."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self, cast

from accounts import email_change
from accounts import selectors as account_selectors
from accounts import services as account_services
from accounts.actors import Actor
from accounts.models import Account, ApiKey, Scope
from accounts.services import AccountChanges
from billing.services.checkout import subscription_cancel, subscription_cancellable
from mailboxes.models import Mailbox, WebhookSubscription
from mailboxes.services.mailboxes import (
    MailboxChanges,
    mailbox_address_resolve,
    mailbox_create,
    mailbox_create_check,
    mailbox_get,
    mailbox_update,
    mailbox_update_check,
)
from mailboxes.services.webhooks import subscription_create, subscription_validate
from oversight.admin_actions.base import ActionParams, AdminAction
from oversight.rule_changes import (
    mailbox_for_rules,
    mailbox_rules_replace,
    rules_digest,
    rules_loosening,
)
from oversight.rules import rules_dump, rules_load, rules_parse
from oversight.stop import sending_resume

# --- Typed parameters -------------------------------------------------------------------


@dataclass(frozen=True)
class AccountUpdate(ActionParams):
    changes: AccountChanges

    def to_json(self) -> dict[str, Any]:
        return dict(self.changes)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(changes=cast(AccountChanges, dict(data)))


@dataclass(frozen=True)
class AccountDelete(ActionParams):
    pass


@dataclass(frozen=True)
class ApiKeyCreate(ActionParams):
    name: str
    scopes: list[str]


@dataclass(frozen=True)
class ApiKeyUpdate(ActionParams):
    key_id: str
    name: str | None
    scopes: list[str] | None


@dataclass(frozen=True)
class ApiKeyRevoke(ActionParams):
    key_id: str


@dataclass(frozen=True)
class MailboxCreate(ActionParams):
    address_local: str
    display_name: str
    webhook_url: str | None
    ai_disclosure: bool


@dataclass(frozen=True)
class MailboxUpdate(ActionParams):
    mailbox_id: str
    changes: MailboxChanges
    # The audit action of the endpoint that asked (mailbox.updated or mailbox.configured).
    # Not stored: a request approved in the console is recorded as mailbox.updated, and a
    # code covers the same changes through either endpoint.
    audit_action: str = "mailbox.updated"

    def to_json(self) -> dict[str, Any]:
        return {"mailbox_id": self.mailbox_id, "changes": dict(self.changes)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(mailbox_id=data["mailbox_id"], changes=data["changes"])


@dataclass(frozen=True)
class MailboxRulesReplace(ActionParams):
    mailbox_id: str
    rules: list[dict[str, Any]]
    # The digest of the rules this change was compared against, filled in by the check:
    # the change applies only to that list (oversight.rule_changes).
    based_on: str = ""


@dataclass(frozen=True)
class WebhookCreate(ActionParams):
    url: str
    events: list[str]
    mailbox_id: str | None


@dataclass(frozen=True)
class BillingCancel(ActionParams):
    pass


@dataclass(frozen=True)
class SendingResume(ActionParams):
    pass


# --- The actions -----------------------------------------------------------------------

# Oversight lets a key approve mail: an agent must not grant it to itself.
_OVERSIGHT_SCOPES = {Scope.OVERSIGHT, Scope.OVERSIGHT_READ}

# Where copies of the mailbox's mail and its events go: changed with an agent's key they
# would let it send mail elsewhere quietly (as creating a webhook would).
_MAILBOX_ROUTING_FIELDS = ("auto_cc", "auto_bcc", "webhook_url", "oversight_webhook_url")


def _key(actor: Actor, key_id: str) -> ApiKey:
    return account_selectors.api_key_get(account=actor.account, key_id=key_id)


ACCOUNT_UPDATE: AdminAction[AccountUpdate, Account] = AdminAction(
    name="account.update",
    params_type=AccountUpdate,
    summary=lambda actor, p: f"change account settings ({', '.join(sorted(p.changes))})",
    # A new oversight email is only requested here: it takes effect once that address
    # confirms, even when the operator approved the call.
    execute=lambda actor, p, request_id: email_change.account_change(
        actor=actor, changes=p.changes, request_id=request_id
    ),
    record=lambda account: account_selectors.account_info(account=account),
)

ACCOUNT_DELETE: AdminAction[AccountDelete, None] = AdminAction(
    name="account.delete",
    params_type=AccountDelete,
    summary=lambda actor, p: f"DELETE the account {actor.account.slug} and all its data",
    execute=lambda actor, p, request_id: account_services.account_delete(
        actor=actor, request_id=request_id
    ),
    record=lambda _: {"status": "deleted"},
)


def _api_key_create_check(actor: Actor, params: ApiKeyCreate) -> ApiKeyCreate:
    scopes = account_services.validate_scopes(params.scopes)
    account_services.api_key_limit_check(account=actor.account)
    return dataclasses.replace(params, scopes=scopes)


API_KEY_CREATE: AdminAction[ApiKeyCreate, tuple[ApiKey, str]] = AdminAction(
    name="api_key.create",
    params_type=ApiKeyCreate,
    check=_api_key_create_check,
    summary=lambda actor, p: f"create the API key {p.name!r} with scopes {', '.join(p.scopes)}",
    execute=lambda actor, p, request_id: account_services.api_key_issue(
        actor=actor, name=p.name, scopes=p.scopes, request_id=request_id
    ),
    # The secret is kept nowhere: the key exists and can be managed, but only the
    # approval_code path hands a raw key to the agent.
    record=lambda created: account_selectors.api_key_info(key=created[0]),
)


def _api_key_update_check(actor: Actor, params: ApiKeyUpdate) -> ApiKeyUpdate:
    account_services.api_key_check_changeable(key=_key(actor, params.key_id))
    if params.scopes is None:
        return params
    return dataclasses.replace(params, scopes=account_services.validate_scopes(params.scopes))


def _adds_oversight(actor: Actor, params: ApiKeyUpdate) -> bool:
    if params.scopes is None:
        return False
    added = set(params.scopes) - set(_key(actor, params.key_id).scopes)
    return bool(added & _OVERSIGHT_SCOPES)


API_KEY_UPDATE: AdminAction[ApiKeyUpdate, ApiKey] = AdminAction(
    name="api_key.update",
    params_type=ApiKeyUpdate,
    check=_api_key_update_check,
    needs_operator=_adds_oversight,
    summary=lambda actor, p: (
        f"give the API key {_key(actor, p.key_id).name!r} the scopes {', '.join(p.scopes or [])}"
    ),
    execute=lambda actor, p, request_id: account_services.api_key_update(
        actor=actor, key_id=p.key_id, name=p.name, scopes=p.scopes, request_id=request_id
    ),
    record=lambda key: account_selectors.api_key_info(key=key),
)


def _api_key_revoke_check(actor: Actor, params: ApiKeyRevoke) -> ApiKeyRevoke:
    _key(actor, params.key_id)
    return params


def _revoke_summary(actor: Actor, params: ApiKeyRevoke) -> str:
    key = _key(actor, params.key_id)
    return f"revoke the API key {key.name!r} ({key.prefix}…)"


API_KEY_REVOKE: AdminAction[ApiKeyRevoke, ApiKey] = AdminAction(
    name="api_key.revoke",
    params_type=ApiKeyRevoke,
    check=_api_key_revoke_check,
    # Revoking a revoked key changes nothing: no need to ask.
    needs_operator=lambda actor, p: _key(actor, p.key_id).is_active,
    summary=_revoke_summary,
    execute=lambda actor, p, request_id: account_services.api_key_revoke(
        actor=actor, key_id=p.key_id, request_id=request_id
    ),
    record=lambda _: {"status": "revoked"},
)


def _mailbox_create_check(actor: Actor, params: MailboxCreate) -> MailboxCreate:
    mailbox_create_check(
        account=actor.account, address_local=params.address_local, webhook_url=params.webhook_url
    )
    return params


def _mailbox_create_summary(actor: Actor, params: MailboxCreate) -> str:
    address, _ = mailbox_address_resolve(account=actor.account, address_local=params.address_local)
    return f"create the mailbox {address}"


MAILBOX_CREATE: AdminAction[MailboxCreate, Mailbox] = AdminAction(
    name="mailbox.create",
    params_type=MailboxCreate,
    check=_mailbox_create_check,
    summary=_mailbox_create_summary,
    execute=lambda actor, p, request_id: mailbox_create(
        actor=actor,
        address_local=p.address_local,
        display_name=p.display_name,
        webhook_url=p.webhook_url,
        ai_disclosure=p.ai_disclosure,
        request_id=request_id,
    ),
    record=lambda mailbox: {"id": mailbox.pk, "address": mailbox.address},
)


def _mailbox_update_check(actor: Actor, params: MailboxUpdate) -> MailboxUpdate:
    mailbox_update_check(
        account=actor.account, mailbox_id=params.mailbox_id, changes=params.changes
    )
    return params


def _changes_routing(actor: Actor, params: MailboxUpdate) -> bool:
    mailbox = mailbox_get(account=actor.account, mailbox_id=params.mailbox_id)
    changes: Mapping[str, Any] = params.changes
    return any(
        field in changes and changes[field] != getattr(mailbox, field)
        for field in _MAILBOX_ROUTING_FIELDS
    )


def _mailbox_update_summary(actor: Actor, params: MailboxUpdate) -> str:
    mailbox = mailbox_get(account=actor.account, mailbox_id=params.mailbox_id)
    return f"change where copies and events of {mailbox.address} go"


MAILBOX_UPDATE: AdminAction[MailboxUpdate, Mailbox] = AdminAction(
    name="mailbox.update",
    params_type=MailboxUpdate,
    check=_mailbox_update_check,
    needs_operator=_changes_routing,
    summary=_mailbox_update_summary,
    execute=lambda actor, p, request_id: mailbox_update(
        actor=actor,
        mailbox_id=p.mailbox_id,
        changes=p.changes,
        action=p.audit_action,
        request_id=request_id,
    ),
    record=lambda mailbox: {"id": mailbox.pk, "status": "updated"},
)


def _rules_replace_check(actor: Actor, params: MailboxRulesReplace) -> MailboxRulesReplace:
    rules = rules_dump(rules_parse(params.rules))
    mailbox = mailbox_for_rules(actor=actor, mailbox_id=params.mailbox_id)
    # A stored request keeps the list it was compared against; a new one takes today's.
    based_on = params.based_on or rules_digest(mailbox.oversight_rules)
    return dataclasses.replace(params, rules=rules, based_on=based_on)


def _rules_loosening(actor: Actor, params: MailboxRulesReplace) -> list[str]:
    mailbox = mailbox_for_rules(actor=actor, mailbox_id=params.mailbox_id)
    return rules_loosening(rules_load(mailbox.oversight_rules), rules_load(params.rules))


def _rules_summary(actor: Actor, params: MailboxRulesReplace) -> str:
    mailbox = mailbox_for_rules(actor=actor, mailbox_id=params.mailbox_id)
    reasons = "; ".join(_rules_loosening(actor, params))
    return f"loosen the oversight rules of {mailbox.address} ({reasons})"


MAILBOX_RULES_REPLACE: AdminAction[MailboxRulesReplace, Mailbox] = AdminAction(
    name="mailbox.oversight_rules",
    params_type=MailboxRulesReplace,
    check=_rules_replace_check,
    # Tightening is immediate; loosening gives the agent autonomy, as a mode upgrade does.
    needs_operator=lambda actor, p: bool(_rules_loosening(actor, p)),
    even_without_approvals=True,
    summary=_rules_summary,
    execute=lambda actor, p, request_id: mailbox_rules_replace(
        actor=actor,
        mailbox_id=p.mailbox_id,
        rules=rules_load(p.rules),
        based_on=p.based_on,
        request_id=request_id,
    ),
    record=lambda mailbox: {"id": mailbox.pk, "rules": mailbox.oversight_rules},
)


def _webhook_create_check(actor: Actor, params: WebhookCreate) -> WebhookCreate:
    clean = subscription_validate(
        account=actor.account, url=params.url, events=params.events, mailbox_id=params.mailbox_id
    )
    return WebhookCreate(url=clean["url"], events=clean["events"], mailbox_id=clean["mailbox_id"])


WEBHOOK_CREATE: AdminAction[WebhookCreate, WebhookSubscription] = AdminAction(
    name="webhook.create",
    params_type=WebhookCreate,
    check=_webhook_create_check,
    summary=lambda actor, p: f"send {', '.join(p.events)} events to {p.url}",
    execute=lambda actor, p, request_id: subscription_create(
        actor=actor, url=p.url, events=p.events, mailbox_id=p.mailbox_id, request_id=request_id
    ),
    record=lambda subscription: {"webhook_id": subscription.pk},
)


def _billing_cancel_check(actor: Actor, params: BillingCancel) -> BillingCancel:
    subscription_cancellable(account=actor.account)
    return params


BILLING_CANCEL: AdminAction[BillingCancel, dict[str, Any]] = AdminAction(
    name="billing.cancel",
    params_type=BillingCancel,
    check=_billing_cancel_check,
    summary=lambda actor, p: "cancel the paid subscription at the end of the billing period",
    execute=lambda actor, p, request_id: subscription_cancel(actor=actor, request_id=request_id),
    record=lambda result: result,
)

SENDING_RESUME: AdminAction[SendingResume, Account] = AdminAction(
    name="sending.resume",
    params_type=SendingResume,
    even_without_approvals=True,
    # Resuming an account that is not stopped changes nothing: no need to ask.
    needs_operator=lambda actor, p: account_selectors.account_sending_stopped(
        account_id=actor.account.pk
    ),
    summary=lambda actor, p: "resume sending: undo the stop switch, so outbound mail leaves again",
    execute=lambda actor, p, request_id: sending_resume(actor=actor, request_id=request_id),
    record=lambda account: {"sending_stopped": account.sending_stopped},
)

ACTIONS: dict[str, AdminAction[Any, Any]] = {
    action.name: action
    for action in (
        ACCOUNT_UPDATE,
        ACCOUNT_DELETE,
        API_KEY_CREATE,
        API_KEY_UPDATE,
        API_KEY_REVOKE,
        MAILBOX_CREATE,
        MAILBOX_UPDATE,
        MAILBOX_RULES_REPLACE,
        WEBHOOK_CREATE,
        BILLING_CANCEL,
        SENDING_RESUME,
    )
}
