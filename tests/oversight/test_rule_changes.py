"""The loosening comparison (oversight.rule_changes) is sound: whenever it lets a change
through without the operator, no email is treated more leniently by the new rules than by
the old ones, in a gated mode (no match holds) or an open one (no match sends)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from oversight.rule_changes import rules_loosening
from oversight.rules import STRICTNESS, MailFacts, Match, Rule, RuleAction, first_match

ADDRESSES = ("ann@acme.example", "bob@acme.example", "eve@evil.example")
ENTRIES = (*ADDRESSES, "@acme.example", "@evil.example")
WORDS = ("invoice", "voice", "report")

flags = st.one_of(st.none(), st.booleans())
matches = st.builds(
    Match,
    recipients=st.lists(st.sampled_from(ENTRIES), max_size=2, unique=True).map(tuple),
    first_contact=flags,
    has_links=flags,
    subject_contains=st.lists(st.sampled_from(WORDS), max_size=2, unique=True).map(tuple),
)
rules = st.builds(
    Rule,
    name=st.sampled_from("abcdefgh"),
    direction=st.just("outbound"),
    action=st.sampled_from(list(RuleAction)),
    match=matches,
)
rule_lists = st.lists(rules, max_size=5)
facts = st.builds(
    MailFacts,
    direction=st.just("outbound"),
    recipients=st.lists(st.sampled_from(ADDRESSES), min_size=1, max_size=2, unique=True).map(tuple),
    sender=st.just(""),
    first_contact=st.booleans(),
    has_attachments=st.just(False),
    has_links=st.booleans(),
    subject=st.sampled_from(["Invoice 7", "voice mail", "Weekly REPORT", "hello"]),
    body=st.just(""),
)


def _strictness(rules: list[Rule], mail: MailFacts, mode_strictness: int) -> int:
    rule = first_match(rules, mail)
    return mode_strictness if rule is None else STRICTNESS[rule.action]


@settings(max_examples=3000, deadline=None, derandomize=True)
@given(old=rule_lists, new=rule_lists, mails=st.lists(facts, min_size=1, max_size=6))
def test_what_passes_without_the_operator_never_loosens(old, new, mails) -> None:
    if rules_loosening(old, new):
        return
    for mail in mails:
        for mode_strictness in (0, 1):  # autonomous-like, gated-like
            assert _strictness(new, mail, mode_strictness) >= _strictness(
                old, mail, mode_strictness
            ), (old, new, mail)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(old=rule_lists)
def test_an_unchanged_list_is_no_loosening(old) -> None:
    assert rules_loosening(old, old) == []


@settings(max_examples=300, deadline=None, derandomize=True)
@given(old=rule_lists, refuse=matches)
def test_a_refuse_rule_in_front_is_no_loosening(old, refuse) -> None:
    assert rules_loosening(old, [Rule("z", "outbound", RuleAction.REFUSE, refuse), *old]) == []


def test_new_approve_rules_are_loosening() -> None:
    approve = Rule("team", "outbound", RuleAction.APPROVE, Match(recipients=("@acme.example",)))
    assert rules_loosening([], [approve]) == ["adds the approve rule 'team'"]
    narrower = Rule("ann", "outbound", RuleAction.APPROVE, Match(recipients=("ann@acme.example",)))
    # Narrowing an approve rule only tightens.
    assert rules_loosening([approve], [narrower]) == []
