"""A dry run of oversight rules: what a list of rules would have done to a mailbox's latest
emails, next to what happened to them. Nothing is written.

Each email is judged by the policy (``outbound_by_rules``, ``inbound_route``) on the same
facts the operator sees when deciding (``oversight.facts``, three queries for the whole
page), as if it arrived or was sent now: first contact is judged by today's history, and
earlier approvals and schedules are set aside.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailboxes.models import DecidedBy, Direction, Email, EmailStatus, Mailbox
from oversight import policy
from oversight.facts import FACTS_RELATED, DecisionFacts, decision_facts_bulk
from oversight.rules import MailFacts, Rule

DRY_RUN_EMAILS = 100
# Recipients the agent chose (the mailbox's automatic Cc and Bcc are the operator's).
_AGENT_ROLES = ("to", "cc", "bcc")


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: str  # sent, held, refused, delivered, quarantined
    rule: str | None  # the rule that decided; None: the mode (or the spam filter)
    # What came after a hold: "then approved by the operator".
    then: str = ""

    @property
    def label(self) -> str:
        if self.then:
            return f"{self.outcome}, {self.then}"
        return f"{self.outcome} by rule {self.rule!r}" if self.rule else f"{self.outcome} by mode"


@dataclass(frozen=True, slots=True)
class DryRunRow:
    email: Email
    would: Verdict
    happened: Verdict | None  # None: nothing was decided yet (waiting for its scan)

    @property
    def differs(self) -> bool:
        return self.happened is None or self.happened.outcome != self.would.outcome


def _mail_facts(facts: DecisionFacts) -> MailFacts:
    email = facts.email
    outbound = email.direction == Direction.OUTBOUND
    people = [c for c in facts.correspondence if not outbound or c.role in _AGENT_ROLES]
    return MailFacts(
        direction=email.direction,
        recipients=tuple(c.address for c in people) if outbound else (),
        sender="" if outbound else (people[0].address if people else ""),
        first_contact=any(c.first_contact for c in people) or not people,
        has_attachments=bool(facts.attachments) or email.has_attachments,
        has_links=bool(facts.links),
        subject=email.subject,
        body=email.text or email.markdown or email.html,
    )


_OUTBOUND = {
    policy.Outcome.SEND: "sent",
    policy.Outcome.HOLD: "held",
    policy.Outcome.REFUSE: "refused",
}
_INBOUND = {
    EmailStatus.PENDING_INBOUND_APPROVAL: "held",
    EmailStatus.REJECTED: "refused",
    EmailStatus.SPAM_QUARANTINED: "quarantined",
}


def _would(mailbox: Mailbox, rules: Sequence[Rule], facts: DecisionFacts) -> Verdict:
    email, mail = facts.email, _mail_facts(facts)
    if email.direction == Direction.OUTBOUND:
        decision = policy.outbound_by_rules(mailbox.oversight_mode, rules, mail)
        return Verdict(_OUTBOUND[decision.outcome], decision.rule)
    route = policy.inbound_route(
        mailbox.oversight_mode, email.spam_verdict or "", rules=rules, facts=mail
    )
    return Verdict(_INBOUND.get(route.status, "delivered"), route.rule)


_HAPPENED = {
    EmailStatus.PENDING_SEND_APPROVAL: "held",
    EmailStatus.PENDING_INBOUND_APPROVAL: "held",
    EmailStatus.SPAM_QUARANTINED: "quarantined",
    EmailStatus.SCHEDULED: "sent",
    EmailStatus.SENDING: "sent",
    EmailStatus.SENT: "sent",
    EmailStatus.SEND_FAILED: "sent",
}


def _happened(email: Email) -> Verdict | None:
    if not email.decided_by:
        return None
    rule = email.decided_rule or None
    if email.decided_by in (DecidedBy.OPERATOR, DecidedBy.API_KEY):
        # The operator decided on a held email: it was held first, then approved or not.
        outcome = "rejected" if email.status == EmailStatus.REJECTED else "approved"
        return Verdict("held", None, then=f"then {outcome} by {email.get_decided_by_display()}")
    if email.status == EmailStatus.REJECTED:
        return Verdict("refused", rule)
    default = "sent" if email.direction == Direction.OUTBOUND else "delivered"
    return Verdict(_HAPPENED.get(EmailStatus(email.status), default), rule)


def rules_dry_run(*, mailbox: Mailbox, rules: Sequence[Rule]) -> list[DryRunRow]:
    """The mailbox's latest emails (both directions, newest first) with what ``rules`` would
    have done to each under the mailbox's current mode, and what happened."""
    emails = list(
        Email.objects.filter(mailbox=mailbox)
        .exclude(status=EmailStatus.CANCELLED)
        .select_related(*FACTS_RELATED)
        .order_by("-id")[:DRY_RUN_EMAILS]
    )
    facts = decision_facts_bulk(emails=emails)
    return [
        DryRunRow(
            email=email, would=_would(mailbox, rules, facts[email.pk]), happened=_happened(email)
        )
        for email in emails
    ]
