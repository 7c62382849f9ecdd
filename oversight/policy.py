"""The oversight policy: the one place that decides what a mailbox's mode allows.

Every path asks here: API send and reply, scheduled sends, inbound from the provider
webhook and from SMTP, console decisions and the hosted approval page. No other module
compares oversight modes.

| mode         | outbound                          | inbound                              |
|--------------|-----------------------------------|--------------------------------------|
| read_only    | refused (mailbox_read_only)       | delivered                            |
| gated_all    | held: pending_send_approval       | held: pending_inbound_approval       |
| gated_send   | held: pending_send_approval       | delivered                            |
| monitored    | sent at once, operator gets a copy| delivered                            |
| autonomous   | sent at once                      | delivered                            |

Scheduled mail (``send_at`` in the future) in a gated mode follows the email's gate timing:
``gate_first`` holds it at once and, once approved, waits as ``scheduled`` until send_at;
``schedule_first`` waits as ``scheduled`` first and is held when send_at arrives. An email
the operator already approved is never held a second time (``outbound_step``).

A mailbox's oversight rules (``oversight.rules``) are evaluated here and nowhere else, on
the facts gathered here (recipients or sender, first contact, attachments, links, subject
and body). The first matching rule decides, per mode:

| rule action | read_only          | gated_all / gated_send     | monitored / autonomous     |
|-------------|--------------------|----------------------------|----------------------------|
| approve     | outbound refused   | sent (inbound delivered)   | as the mode: sent/delivered|
| hold        | outbound refused   | held                       | held, as a gated mode does |
| refuse      | outbound refused   | rejected, never sent/shown | rejected, never sent/shown |

(Inbound mail of a read_only mailbox follows its rules like any other mode's.) With no
match the mode decides. Every routed email records whether its mode or a rule (and which)
decided (``OutboundDecision.rule``, ``InboundDecision.rule``); the lifecycle writes it.

Decisions (approve or reject) come from the API (``oversight`` scope), the console and the
hosted approval link; all go through ``oversight.services.email_decide``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.db.models import Q
from django.utils import timezone

from mailboxes.models import (
    Direction,
    Email,
    EmailStatus,
    GateTiming,
    Mailbox,
    OversightMode,
    SpamVerdict,
)
from mailboxes.services.correspondents import correspondents_new, normalized_address
from multimail.errors import ApiError
from oversight.inspection import body_links
from oversight.rules import MailFacts, Rule, RuleAction, first_match, rules_load

LADDER: tuple[str, ...] = tuple(OversightMode.values)
UPGRADE_PATH = ["gated_all", "gated_send", "monitored", "autonomous"]


class Outcome(StrEnum):
    SEND = "send"
    HOLD = "hold"
    REFUSE = "refuse"
    DELIVER = "deliver"
    # Outbound only: keep (or put) the email in ``scheduled`` until its send_at.
    WAIT = "wait"


@dataclass(frozen=True, slots=True)
class OutboundDecision:
    outcome: Outcome
    copy_operator: bool = False
    # The name of the rule that decided; None when the mode did.
    rule: str | None = None
    # Why it is held when the mode would not hold it (the stop switch); "" otherwise.
    hold_reason: str = ""

    @property
    def held(self) -> bool:
        return self.outcome == Outcome.HOLD


def rank(mode: str) -> int:
    return LADDER.index(mode)


def is_upgrade(current: str, target: str) -> bool:
    return rank(target) > rank(current)


def outbound_decision(mode: str) -> OutboundDecision:
    if mode == OversightMode.READ_ONLY:
        return OutboundDecision(Outcome.REFUSE)
    if mode in (OversightMode.GATED_ALL, OversightMode.GATED_SEND):
        return OutboundDecision(Outcome.HOLD)
    return OutboundDecision(Outcome.SEND, copy_operator=mode == OversightMode.MONITORED)


def mailbox_rules(mailbox: Mailbox) -> list[Rule]:
    return rules_load(mailbox.oversight_rules)


def rule_refusal_reason(rule: str) -> str:
    """The failure_reason of an email a rule refused: it names the rule."""
    return f"refused_by_rule: the oversight rule {rule!r} refuses this mail"


def outbound_facts(email: Email) -> MailFacts:
    """What rules look at in an outbound email: the recipients the agent chose (the
    mailbox's own automatic Cc and Bcc are the operator's), first contact with any of them
    (the account's correspondents, as the operator's decision facts show it)."""
    recipients = [normalized_address(a) for a in (*email.to, *email.cc, *email.bcc)]
    recipients = list(dict.fromkeys(a for a in recipients if a))
    new = correspondents_new(account_id=email.account_id, addresses=recipients, email_id=email.pk)
    return MailFacts(
        direction=Direction.OUTBOUND,
        recipients=tuple(recipients),
        sender="",
        first_contact=bool(new),
        has_attachments=email.has_attachments,
        has_links=bool(body_links(html=email.html, markdown=email.markdown, text=email.text)),
        subject=email.subject,
        body=email.text or email.markdown,
    )


def inbound_facts(
    *,
    account_id: str,
    sender: str,
    subject: str,
    text: str,
    html: str,
    markdown: str,
    has_attachments: bool,
) -> MailFacts:
    """What rules look at in an arriving message, before it is stored."""
    address = normalized_address(sender)
    new = correspondents_new(account_id=account_id, addresses=[address]) if address else set()
    return MailFacts(
        direction=Direction.INBOUND,
        recipients=(),
        sender=address,
        first_contact=bool(new) or not address,
        has_attachments=has_attachments,
        has_links=bool(body_links(html=html, markdown=markdown, text=text)),
        subject=subject,
        body=text or markdown or html,
    )


def outbound_by_rules(mode: str, rules: Sequence[Rule], facts: MailFacts) -> OutboundDecision:
    """What the mode and the first matching rule make of outbound mail with ``facts``,
    timing and earlier approvals aside (``outbound_step`` adds those)."""
    base = outbound_decision(mode)
    if base.outcome == Outcome.REFUSE:
        return base
    rule = first_match(rules, facts)
    return base if rule is None else _by_rule(base, rule)


def _by_rule(base: OutboundDecision, rule: Rule) -> OutboundDecision:
    if rule.action == RuleAction.REFUSE:
        return OutboundDecision(Outcome.REFUSE, rule=rule.name)
    if rule.action == RuleAction.HOLD:
        return OutboundDecision(Outcome.HOLD, rule=rule.name)
    # approve: no hold, in any mode that sends at all (a monitored copy still goes out).
    return OutboundDecision(Outcome.SEND, copy_operator=base.copy_operator, rule=rule.name)


STOPPED_HOLD_REASON = "sending stopped by the operator"


def outbound_step(
    email: Email,
    mode: str,
    *,
    now: datetime,
    rules: Sequence[Rule] = (),
    stopped: bool = False,
) -> OutboundDecision:
    """What to do with an outbound email now: after the scan, and again when a scheduled
    email comes due. Read-only always refuses (the mode may have been lowered since the
    email was accepted or approved), whatever the rules say; an approved email is sent
    without a second hold; otherwise the first of ``rules`` that matches decides, and with
    none the mode. ``stopped``: the account's sending is stopped, so what would leave now
    is held."""
    base = outbound_decision(mode)
    if base.outcome == Outcome.REFUSE:
        return base
    approved = email.approved_at is not None
    if not approved and rules:
        base = outbound_by_rules(mode, rules, outbound_facts(email))
        if base.outcome == Outcome.REFUSE:
            return base
    if email.send_at is not None and email.send_at > now:
        if stopped and approved:
            # Approved for later: it keeps its place until then, and is held only if
            # sending is still stopped when it comes due.
            return OutboundDecision(Outcome.WAIT)
        hold_now = base.held and not approved and email.gate_timing == GateTiming.GATE_FIRST
        if hold_now:
            return OutboundDecision(Outcome.HOLD, rule=base.rule)
        return OutboundDecision(Outcome.WAIT)
    if stopped and (approved or not base.held):
        return OutboundDecision(Outcome.HOLD, hold_reason=STOPPED_HOLD_REASON)
    if approved:
        return OutboundDecision(Outcome.SEND, copy_operator=base.copy_operator)
    return base


def inbound_decision(mode: str) -> Outcome:
    return Outcome.HOLD if mode == OversightMode.GATED_ALL else Outcome.DELIVER


@dataclass(frozen=True, slots=True)
class InboundDecision:
    status: EmailStatus
    # The name of the rule that decided; None when the mode (or the spam filter) did.
    rule: str | None = None


def inbound_route(
    mode: str, verdict: str, *, rules: Sequence[Rule] = (), facts: MailFacts | None = None
) -> InboundDecision:
    """Where an arriving email lands: quarantined spam never reaches anyone; then the first
    matching rule (``facts`` are needed only when there are rules), then the mode."""
    if verdict == SpamVerdict.QUARANTINED or not rules or facts is None:
        return InboundDecision(inbound_first_status(mode, verdict))
    rule = first_match(rules, facts)
    if rule is None:
        return InboundDecision(inbound_first_status(mode, verdict))
    if rule.action == RuleAction.REFUSE:
        return InboundDecision(EmailStatus.REJECTED, rule.name)
    if rule.action == RuleAction.HOLD:
        return InboundDecision(EmailStatus.PENDING_INBOUND_APPROVAL, rule.name)
    return InboundDecision(_delivered_status(verdict), rule.name)


def _delivered_status(verdict: str) -> EmailStatus:
    return EmailStatus.SPAM_FLAGGED if verdict == SpamVerdict.FLAGGED else EmailStatus.UNREAD


def inbound_first_status(mode: str, verdict: str) -> EmailStatus:
    """Where an arriving email lands by its mode. Quarantined spam never reaches anyone;
    otherwise the mode decides, and a held email keeps its spam verdict for the operator to
    see (approving it lands flagged spam as flagged, see ``approved_status``)."""
    if verdict == SpamVerdict.QUARANTINED:
        return EmailStatus.SPAM_QUARANTINED
    if inbound_decision(mode) == Outcome.HOLD:
        return EmailStatus.PENDING_INBOUND_APPROVAL
    return _delivered_status(verdict)


def ensure_can_send(mode: str) -> None:
    """Raise the catalog error when the mode refuses outbound mail (checked at accept time
    and again when the email is processed, since the mode may have changed in between)."""
    if outbound_decision(mode).outcome == Outcome.REFUSE:
        raise ApiError(
            "mailbox_read_only",
            "This mailbox is read_only, which blocks all outbound email. Request an upgrade "
            "with POST /v1/mailboxes/{id}/request-upgrade.",
            upgrade_path=UPGRADE_PATH,
        )


def ensure_not_stopped(*, stopped: bool) -> None:
    """Approving outbound mail while the account's sending is stopped would only hold it
    again: refused, so the operator resumes first."""
    if stopped:
        raise ApiError(
            "conflict",
            "Sending is stopped for this account (the operator's stop switch), so approved "
            "mail cannot leave. Resume sending first (POST /v1/oversight/resume, or the "
            "console), then approve it; rejecting works meanwhile.",
        )


def held_status(direction: str) -> EmailStatus:
    return (
        EmailStatus.PENDING_SEND_APPROVAL
        if direction == Direction.OUTBOUND
        else EmailStatus.PENDING_INBOUND_APPROVAL
    )


PENDING_STATUSES = (EmailStatus.PENDING_SEND_APPROVAL, EmailStatus.PENDING_INBOUND_APPROVAL)


def agent_hidden() -> Q:
    """Emails an agent never sees, not even listed: inbound mail the operator rejected."""
    return Q(direction=Direction.INBOUND, status=EmailStatus.REJECTED)


def agent_unsearchable() -> Q:
    """Emails search never finds for the agent: those it may not see, and those whose
    content it may not read yet (held inbound in gated_all), since a match on a word would
    tell it what the hidden body says (the same rule as ``agent_can_read_content``)."""
    return Q(
        direction=Direction.INBOUND,
        status__in=(EmailStatus.PENDING_INBOUND_APPROVAL, EmailStatus.REJECTED),
    )


def agent_can_read_content(email: Email) -> bool:
    """In gated_all a held inbound email's body and attachments stay hidden from the agent
    until the operator approves it; rejected inbound mail is never shown."""
    if email.direction != Direction.INBOUND:
        return True
    return email.status not in (EmailStatus.PENDING_INBOUND_APPROVAL, EmailStatus.REJECTED)


def approved_status(email: Email, *, now: datetime | None = None) -> EmailStatus:
    """Where an approved email goes next: outbound is sent, or waits as ``scheduled`` when
    the operator approved first (gate_first) and send_at is still ahead; inbound becomes
    unread (or stays flagged as spam)."""
    if email.direction == Direction.INBOUND:
        # Holding took precedence over the spam filter's flag; approval does not clear it.
        flagged = email.spam_verdict == SpamVerdict.FLAGGED
        return EmailStatus.SPAM_FLAGGED if flagged else EmailStatus.UNREAD
    if email.send_at is not None and email.send_at > (now or timezone.now()):
        return EmailStatus.SCHEDULED
    return EmailStatus.SENDING


def is_mode(value: str) -> bool:
    return value in LADDER


def event_hidden_from_agent(data: Mapping[str, Any]) -> bool:
    """The live event stream (a read key is enough) carries nothing about mail the API
    never shows the agent (``agent_hidden``): the decision on a rejected inbound email,
    refused by a rule or by the operator. The webhooks still carry it: the operator
    approved each target when it was set, while a stream needs only a read key."""
    return data.get("direction") == Direction.INBOUND and data.get("status") == EmailStatus.REJECTED
