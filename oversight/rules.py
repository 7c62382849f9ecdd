"""Oversight rules: their shape, their validation and their evaluation, all pure.

A mailbox keeps an ordered list of rules (``Mailbox.oversight_rules``). A rule is
``{"name", "direction", "match", "action"}``; every match field given must hold; the first
rule that matches an email decides it, and with none the mode decides (``oversight.policy``
is the only caller of ``first_match``: it gathers the facts and applies the action per
mode). Which changes to a list loosen oversight is ``oversight.rule_changes``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mailboxes.models import Direction
from multimail.errors import ApiError

MAX_RULES = 50
MAX_NAME = 100
MAX_ENTRIES = 50
MAX_TEXT = 200
# An exact address, or "@domain" for every address of that domain.
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DOMAIN = re.compile(r"^@[^@\s]+\.[^@\s]+$")


class RuleAction(StrEnum):
    APPROVE = "approve"
    HOLD = "hold"
    REFUSE = "refuse"


# How much each action keeps mail from flowing (rule_changes compares them).
STRICTNESS = {RuleAction.APPROVE: 0, RuleAction.HOLD: 1, RuleAction.REFUSE: 2}

_ADDRESS_FIELDS = ("recipients", "senders")
_FLAG_FIELDS = ("first_contact", "has_attachments", "has_links")
_TEXT_FIELDS = ("subject_contains", "body_contains")
MATCH_FIELDS = (*_ADDRESS_FIELDS, *_FLAG_FIELDS, *_TEXT_FIELDS)
# Recipients are the agent's choice on outbound mail; the sender is the stranger's inbound.
_FIELD_DIRECTION = {"recipients": Direction.OUTBOUND, "senders": Direction.INBOUND}


@dataclass(frozen=True, slots=True)
class Match:
    """Every field given must hold; None (or empty) means "any"."""

    recipients: tuple[str, ...] = ()
    senders: tuple[str, ...] = ()
    first_contact: bool | None = None
    has_attachments: bool | None = None
    has_links: bool | None = None
    subject_contains: tuple[str, ...] = ()
    body_contains: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name in MATCH_FIELDS:
            value = getattr(self, name)
            if value is None or value == ():
                continue
            data[name] = list(value) if isinstance(value, tuple) else value
        return data


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    direction: str
    action: RuleAction
    match: Match = field(default_factory=Match)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "direction": self.direction,
            "match": self.match.to_json(),
            "action": str(self.action),
        }


@dataclass(frozen=True, slots=True)
class MailFacts:
    """What rules look at in one email (gathered by oversight.policy)."""

    direction: str
    # Outbound: every To, Cc and Bcc the agent gave; inbound: empty.
    recipients: tuple[str, ...]
    # Inbound: the envelope sender; outbound: empty.
    sender: str
    first_contact: bool
    has_attachments: bool
    has_links: bool
    subject: str
    body: str


# --- Evaluation ------------------------------------------------------------------------


def address_matches(address: str, entry: str) -> bool:
    """``entry`` is an exact address or ``@domain``; both compare case-insensitively."""
    address, entry = address.strip().lower(), entry.strip().lower()
    if entry.startswith("@"):
        return address.endswith(entry)
    return address == entry


def _any_address(address: str, entries: Iterable[str]) -> bool:
    return any(address_matches(address, entry) for entry in entries)


def _contains_any(text: str, needles: Iterable[str]) -> bool:
    folded = text.casefold()
    return any(needle.casefold() in folded for needle in needles)


def rule_matches(rule: Rule, facts: MailFacts) -> bool:
    if rule.direction != facts.direction:
        return False
    match = rule.match
    if match.recipients and not (
        facts.recipients and all(_any_address(r, match.recipients) for r in facts.recipients)
    ):
        return False
    if match.senders and not _any_address(facts.sender, match.senders):
        return False
    for name in _FLAG_FIELDS:
        wanted = getattr(match, name)
        if wanted is not None and wanted != getattr(facts, name):
            return False
    if match.subject_contains and not _contains_any(facts.subject, match.subject_contains):
        return False
    return not (match.body_contains and not _contains_any(facts.body, match.body_contains))


def first_match(rules: Sequence[Rule], facts: MailFacts) -> Rule | None:
    return next((rule for rule in rules if rule_matches(rule, facts)), None)


# --- Parsing and validation -------------------------------------------------------------


class _Issues:
    """Every problem of a submitted list, each naming its index and field."""

    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, field_path: str, code: str, message: str) -> None:
        self.items.append({"field": field_path, "code": code, "message": message})

    def raise_any(self) -> None:
        if not self.items:
            return
        first = self.items[0]
        summary = (
            first["message"]
            if len(self.items) == 1
            else (f"{first['message']} ({len(self.items) - 1} more problems are listed in errors)")
        )
        raise ApiError(first["code"], summary, param=first["field"], errors=self.items)


def _strings(
    value: Any, path: str, issues: _Issues, *, pattern: re.Pattern[str] | None = None
) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        issues.add(path, "invalid_parameter", f"{path} must be a non-empty list of strings.")
        return ()
    if len(value) > MAX_ENTRIES:
        issues.add(path, "validation_error", f"{path} may hold at most {MAX_ENTRIES} entries.")
        return ()
    result = []
    for index, item in enumerate(value):
        where = f"{path}[{index}]"
        if not isinstance(item, str) or not item.strip() or len(item) > MAX_TEXT:
            issues.add(
                where, "invalid_parameter", f"{where} must be text of 1 to {MAX_TEXT} characters."
            )
        elif pattern is not None and not (_ADDRESS.match(item) or pattern.match(item)):
            issues.add(
                where,
                "invalid_parameter",
                f"{where} ({item!r}) must be an email address or @domain (e.g. @example.com).",
            )
        else:
            result.append(item.strip().lower() if pattern is not None else item)
    return tuple(result)


def _match_parse(value: Any, path: str, direction: str, issues: _Issues) -> Match:
    if not isinstance(value, Mapping):
        issues.add(path, "invalid_parameter", f"{path} must be an object of match fields.")
        return Match()
    fields: dict[str, Any] = {}
    for name, item in value.items():
        where = f"{path}.{name}"
        if name not in MATCH_FIELDS:
            issues.add(
                where,
                "invalid_parameter",
                f"{where} is not a match field. Use: {', '.join(MATCH_FIELDS)}.",
            )
        elif name in _FIELD_DIRECTION and _FIELD_DIRECTION[name] != direction:
            issues.add(
                where,
                "validation_error",
                f"{where} applies to {_FIELD_DIRECTION[name]} rules only; this rule is "
                f"{direction}.",
            )
        elif name in _FLAG_FIELDS:
            if isinstance(item, bool):
                fields[name] = item
            else:
                issues.add(where, "invalid_parameter", f"{where} must be true or false.")
        else:
            pattern = _DOMAIN if name in _ADDRESS_FIELDS else None
            fields[name] = _strings(item, where, issues, pattern=pattern)
    return Match(**fields)


def _rule_parse(value: Any, index: int, issues: _Issues) -> Rule | None:
    path = f"rules[{index}]"
    if not isinstance(value, Mapping):
        issues.add(path, "invalid_parameter", f"{path} must be an object.")
        return None
    before = len(issues.items)
    for key in value:
        if key not in ("name", "direction", "match", "action"):
            issues.add(
                f"{path}.{key}",
                "invalid_parameter",
                f"{path}.{key} is not a rule field. Use name, direction, match and action.",
            )
    name = value.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        issues.add(
            f"{path}.name",
            "invalid_parameter",
            f"{path}.name must be text of 1 to {MAX_NAME} characters.",
        )
    direction = value.get("direction")
    if direction not in Direction.values:
        issues.add(
            f"{path}.direction",
            "invalid_parameter",
            f"{path}.direction must be outbound or inbound.",
        )
    action = value.get("action")
    if action not in RuleAction.__members__.values():
        issues.add(
            f"{path}.action",
            "invalid_parameter",
            f"{path}.action must be one of: {', '.join(RuleAction)}.",
        )
    match = _match_parse(value.get("match", {}), f"{path}.match", str(direction), issues)
    if len(issues.items) > before:
        return None
    return Rule(
        name=str(name).strip(),
        direction=str(direction),
        action=RuleAction(str(action)),
        match=match,
    )


def rules_parse(value: Any) -> list[Rule]:
    """The rules of a submitted list (JSON), or the catalog error naming every bad rule's
    index and field (``errors``; ``param`` is the first)."""
    issues = _Issues()
    if not isinstance(value, list):
        issues.add("rules", "invalid_parameter", "rules must be a list of rules.")
        issues.raise_any()
    if len(value) > MAX_RULES:
        issues.add(
            "rules",
            "validation_error",
            f"A mailbox has at most {MAX_RULES} rules; got {len(value)}.",
        )
        issues.raise_any()
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(value):
        rule = _rule_parse(item, index, issues)
        if rule is None:
            continue
        key = rule.name.casefold()
        if key in seen:
            issues.add(
                f"rules[{index}].name",
                "validation_error",
                f"rules[{index}].name {rule.name!r} is already the name of rules[{seen[key]}]: "
                "each email records the rule that decided it, so names are unique.",
            )
            continue
        seen[key] = index
        rules.append(rule)
    issues.raise_any()
    return rules


def rules_load(stored: Sequence[Mapping[str, Any]]) -> list[Rule]:
    """The rules stored on a mailbox (validated when they were saved)."""
    return rules_parse(list(stored))


def rules_dump(rules: Sequence[Rule]) -> list[dict[str, Any]]:
    return [rule.to_json() for rule in rules]
