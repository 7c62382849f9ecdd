"""Inbound spam scoring: a small, explainable heuristic, and the user's spam labels.

The score is the sum of the rules below, clamped to 0-100:

| rule                                                         | points |
|--------------------------------------------------------------|--------|
| upstream filter said ``X-Spam-Status: Yes``                  | 50     |
| upstream ``X-Spam-Score`` (SpamAssassin points x 5, max 40)  | 0-40   |
| executable attachment (.exe, .scr, .js, .bat, ...)           | 40     |
| each spam phrase in subject or body (max 4 counted)          | 10     |
| subject shouted in capitals (10+ letters)                    | 15     |
| no Message-ID, no Date, or no From (each)                    | 10     |
| more than 10 links                                           | 10     |
| Reply-To on another domain than From                         | 5      |
| HTML body without a text alternative                         | 5      |

Verdict: ``quarantined`` at 80 or more, ``flagged`` at 50 or more, else ``clean``.
Flagged mail lands as ``spam_flagged`` (listed, readable), quarantined mail as
``spam_quarantined``; ``report-spam`` / ``not-spam`` let the agent correct either way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import transaction

from accounts.models import Account
from mailboxes import lifecycle
from mailboxes.models import Direction, Email, EmailStatus, SpamVerdict
from mailboxes.selectors import SPAM_STATUSES
from mailboxes.services.attachment_safety import executable_reason
from multimail.errors import not_found

FLAG_THRESHOLD = 50
QUARANTINE_THRESHOLD = 80

SPAM_PHRASES = (
    "viagra",
    "lottery",
    "you have won",
    "claim your prize",
    "wire transfer",
    "100% free",
    "act now",
    "risk-free",
    "double your",
    "crypto giveaway",
    "verify your account",
    "your account has been suspended",
    "urgent response needed",
    "nigerian prince",
    "inheritance fund",
)
_LINK = re.compile(r"https?://", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class SpamSignals:
    """What the scorer looks at, extracted once from the parsed message."""

    subject: str
    body: str
    from_address: str
    reply_to: str
    has_message_id: bool
    has_date: bool
    html_only: bool
    attachment_names: tuple[str, ...]
    upstream_flag: bool
    upstream_score: float | None
    # The first bytes of each attachment, in the order of attachment_names.
    attachment_heads: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class SpamResult:
    score: int
    verdict: SpamVerdict
    # One line per rule that scored, e.g. "spam phrase \"you have won\" (+10)".
    reasons: tuple[str, ...] = ()


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower().strip(">").strip()


def _scored_rules(signals: SpamSignals) -> list[tuple[float, str]]:
    rules: list[tuple[float, str]] = []
    if signals.upstream_flag:
        rules.append((50, "an upstream filter marked it as spam (X-Spam-Status: Yes)"))
    if signals.upstream_score is not None and signals.upstream_score > 0:
        rules.append(
            (min(signals.upstream_score * 5, 40), f"upstream spam score {signals.upstream_score:g}")
        )
    heads = [*signals.attachment_heads, *[b""] * len(signals.attachment_names)]
    executables = [
        name
        for name, head in zip(signals.attachment_names, heads, strict=False)
        if executable_reason(name=name, content_type="", head=head) is not None
    ]
    if executables:
        rules.append((40, f"executable attachment {executables[0]!r}"))
    haystack = f"{signals.subject}\n{signals.body}".lower()
    phrases = [phrase for phrase in SPAM_PHRASES if phrase in haystack][:4]
    rules.extend((10, f'spam phrase "{phrase}"') for phrase in phrases)
    letters = [c for c in signals.subject if c.isalpha()]
    if len(letters) >= 10 and all(c.isupper() for c in letters):
        rules.append((15, "subject in capitals"))
    for present, header in (
        (signals.has_message_id, "Message-ID"),
        (signals.has_date, "Date"),
        (bool(signals.from_address), "From"),
    ):
        if not present:
            rules.append((10, f"no {header} header"))
    links = len(_LINK.findall(signals.body))
    if links > 10:
        rules.append((10, f"{links} links"))
    if (
        signals.reply_to
        and signals.from_address
        and _domain(signals.reply_to) != _domain(signals.from_address)
    ):
        rules.append((5, "Reply-To on another domain than From"))
    if signals.html_only:
        rules.append((5, "HTML without a text alternative"))
    return rules


def spam_score(*, signals: SpamSignals) -> SpamResult:
    rules = _scored_rules(signals)
    final = max(0, min(100, round(sum(points for points, _ in rules))))
    if final >= QUARANTINE_THRESHOLD:
        verdict = SpamVerdict.QUARANTINED
    elif final >= FLAG_THRESHOLD:
        verdict = SpamVerdict.FLAGGED
    else:
        verdict = SpamVerdict.CLEAN
    reasons = tuple(f"{reason} (+{points:g})" for points, reason in rules)
    return SpamResult(score=final, verdict=verdict, reasons=reasons)


# Received mail the agent may quarantine: everything but what the operator holds or
# rejected, and what was cancelled.
_REPORTABLE = (
    EmailStatus.UNREAD,
    EmailStatus.READ,
    EmailStatus.ARCHIVED,
    EmailStatus.DELETED,
    EmailStatus.SPAM_FLAGGED,
)


def _inbound_email_for_update(*, account: Account, email_id: str) -> Email:
    # Spam labels only make sense on received mail; outbound ids answer not_found.
    email = (
        Email.objects.select_for_update()
        .filter(account=account, pk=email_id, direction=Direction.INBOUND)
        .first()
    )
    if email is None:
        raise not_found("email")
    return email


def _label(email: Email, label: str) -> None:
    email.user_label = label
    email.save(update_fields=["user_label"])


@transaction.atomic
def email_report_spam(*, account: Account, email_id: str) -> Email:
    """The agent says it is spam: quarantine it and remember the label.

    Mail the operator still has to decide on, or already rejected, keeps its status (the
    agent must not pull an email out of the operator's queue); only the label is recorded.
    """
    email = _inbound_email_for_update(account=account, email_id=email_id)
    _label(email, "spam")
    if email.status in _REPORTABLE:
        lifecycle.email_move(email, to=EmailStatus.SPAM_QUARANTINED)
    return email


@transaction.atomic
def email_mark_not_spam(*, account: Account, email_id: str) -> Email:
    """The agent says it is not spam: back to the inbox as unread.

    Held or rejected mail stays where the operator put it: the label is recorded but the
    status only moves when the email is in a spam status (or already in the inbox).
    """
    email = _inbound_email_for_update(account=account, email_id=email_id)
    _label(email, "not_spam")
    if email.status in SPAM_STATUSES:
        lifecycle.email_move(email, to=EmailStatus.UNREAD)
    return email
