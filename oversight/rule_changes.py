"""Which changes to a mailbox's rules loosen oversight, and so need the operator.

Loosening is adding an ``approve`` rule (or widening one), or removing, narrowing or
softening a ``hold`` or ``refuse`` rule, including putting a less strict rule in front of
it, since the first match wins. Everything else tightens and applies at once. The
comparison is conservative: when it cannot prove a change keeps mail at least as
constrained, it calls the change loosening and asks the operator.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from django.db import transaction

from accounts.actors import Actor
from accounts.services import audit_record
from mailboxes.models import Mailbox
from multimail.errors import ApiError, not_found
from oversight.rules import (
    STRICTNESS,
    Match,
    Rule,
    RuleAction,
    address_matches,
    rules_dump,
    rules_load,
)


def _addresses_cover(wide: Sequence[str], narrow: Sequence[str]) -> bool:
    """Every address ``narrow`` accepts, ``wide`` accepts too."""
    return all(
        any(
            entry == other or (entry.startswith("@") and address_matches(other, entry))
            for entry in wide
        )
        for other in narrow
    )


def _texts_cover(wide: Sequence[str], narrow: Sequence[str]) -> bool:
    """Every text containing one of ``narrow`` contains one of ``wide``."""
    return all(any(w.casefold() in n.casefold() for w in wide) for n in narrow)


def match_covers(wide: Match, narrow: Match) -> bool:
    """Every email ``narrow`` matches, ``wide`` matches too (fields are ANDed: each field
    ``wide`` sets must be implied by the same field of ``narrow``)."""
    if wide.recipients and not (
        narrow.recipients and _addresses_cover(wide.recipients, narrow.recipients)
    ):
        return False
    if wide.senders and not (narrow.senders and _addresses_cover(wide.senders, narrow.senders)):
        return False
    for name in ("first_contact", "has_attachments", "has_links"):
        wanted = getattr(wide, name)
        if wanted is not None and getattr(narrow, name) != wanted:
            return False
    for name in ("subject_contains", "body_contains"):
        wide_texts, narrow_texts = getattr(wide, name), getattr(narrow, name)
        if wide_texts and not (narrow_texts and _texts_cover(wide_texts, narrow_texts)):
            return False
    return True


def _same(a: Rule, b: Rule) -> bool:
    return a.direction == b.direction and a.action == b.action and a.match == b.match


def rules_loosening(old: Sequence[Rule], new: Sequence[Rule]) -> list[str]:
    """Why replacing ``old`` by ``new`` loosens oversight, one sentence per reason (empty:
    the change only tightens, or changes nothing)."""
    reasons: list[str] = []
    for rule in new:
        if rule.action != RuleAction.APPROVE:
            continue
        if not any(
            prior.action == RuleAction.APPROVE
            and prior.direction == rule.direction
            and match_covers(prior.match, rule.match)
            for prior in old
        ):
            reasons.append(f"adds the approve rule {rule.name!r}")
    for index, rule in enumerate(old):
        if rule.action == RuleAction.APPROVE:
            continue
        strictness = STRICTNESS[rule.action]
        position = next(
            (
                at
                for at, candidate in enumerate(new)
                if candidate.direction == rule.direction
                and STRICTNESS[candidate.action] >= strictness
                and match_covers(candidate.match, rule.match)
            ),
            None,
        )
        if position is None:
            reasons.append(f"removes, narrows or softens the {rule.action} rule {rule.name!r}")
            continue
        # A less strict rule now in front of it decides some of its mail first, unless it
        # was in front of it already.
        earlier = old[:index]
        for candidate in new[:position]:
            if (
                candidate.direction == rule.direction
                and STRICTNESS[candidate.action] < strictness
                and not any(_same(candidate, prior) for prior in earlier)
            ):
                reasons.append(
                    f"puts the {candidate.action} rule {candidate.name!r} before the "
                    f"{rule.action} rule {rule.name!r}"
                )
    return list(dict.fromkeys(reasons))


# --- Replacing a mailbox's rules ------------------------------------------------------------


def rules_digest(stored: Sequence[Any]) -> str:
    """Names the list a change was compared against (compare-and-set, see below)."""
    return hashlib.sha256(json.dumps(list(stored), sort_keys=True).encode()).hexdigest()


def mailbox_for_rules(*, actor: Actor, mailbox_id: str, lock: bool = False) -> Mailbox:
    query = Mailbox.objects.filter(account=actor.account, pk=mailbox_id, is_active=True)
    mailbox = (query.select_for_update(no_key=True) if lock else query).first()
    if mailbox is None:
        raise not_found("mailbox")
    return mailbox


@transaction.atomic
def mailbox_rules_replace(
    *,
    actor: Actor,
    mailbox_id: str,
    rules: Sequence[Rule],
    based_on: str,
    request_id: str = "",
) -> Mailbox:
    """Replace the mailbox's rules with ``rules``, if they are still the list the change was
    checked against (``based_on``, a ``rules_digest``): whether it loosens, and so whether
    the operator had to approve it, was decided on that list. Audited with before and after.
    """
    mailbox = mailbox_for_rules(actor=actor, mailbox_id=mailbox_id, lock=True)
    previous = list(mailbox.oversight_rules)
    if rules_digest(previous) != based_on:
        raise ApiError(
            "conflict",
            "The mailbox's oversight rules changed since this change was asked for. Read "
            "them again with GET /v1/mailboxes/{id}/oversight-rules and repeat the PUT.",
        )
    stored = rules_dump(rules)
    if stored != previous:
        mailbox.oversight_rules = stored
        mailbox.save(update_fields=["oversight_rules"])
        audit_record(
            actor=actor,
            action="mailbox.oversight_rules_replaced",
            resource_type="mailbox",
            resource_id=mailbox.pk,
            metadata={
                "from": previous,
                "to": stored,
                "loosening": rules_loosening(rules_load(previous), rules),
            },
            request_id=request_id,
        )
    return mailbox
