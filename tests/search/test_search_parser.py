"""The search query parser (mailboxes.search.parse) and the FTS5 expression built from it."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailboxes.search import MAX_QUERY_LENGTH, QueryError, SearchQuery, Term, fts_match, parse

# The columns of the embedded default's FTS5 table (migration 0011).
_FTS5 = sqlite3.connect(":memory:", check_same_thread=False)
_FTS5.execute(
    'CREATE VIRTUAL TABLE fts USING fts5(subject, from_address, "to", cc, "text", markdown, '
    "attachment_names, tokenize='unicode61 remove_diacritics 2')"
)
_FTS5.execute(
    "INSERT INTO fts VALUES ('Hello', 'a@b.example', '[\"c@d.example\"]', '[]', 'x', 'x', 'f.pdf')"
)


def test_the_syntax() -> None:
    assert parse('Invoice "march  2026" -draft -"old offer" FROM:Billing to:ops@x.io') == (
        SearchQuery(
            include=(
                Term("Invoice"),
                Term("march 2026", phrase=True),
                Term("Billing", field="from"),
                Term("ops@x.io", field="to"),
            ),
            exclude=(Term("draft"), Term("old offer", phrase=True)),
        )
    )


def test_punctuation_alone_is_not_a_term() -> None:
    assert parse("hello !!! - --").include == (Term("hello"),)


@pytest.mark.parametrize("raw", ['"open', "-a -b", "", "...", "x" * (MAX_QUERY_LENGTH + 1)])
def test_malformed(raw: str) -> None:
    with pytest.raises(QueryError):
        parse(raw)


@given(st.text(max_size=MAX_QUERY_LENGTH + 20))
def test_any_text_parses_or_is_refused_with_a_reason(raw: str) -> None:
    reason = ""
    try:
        query = parse(raw)
    except QueryError as refused:
        reason = str(refused)
    if reason:
        assert reason.startswith("q ")
    else:
        assert query.include
        # The FTS5 expression is always valid FTS5 syntax (the embedded default's engine).
        _FTS5.execute("SELECT rowid FROM fts WHERE fts MATCH ?", (fts_match(query),)).fetchall()


@given(
    st.lists(
        st.text(alphabet=st.characters(categories=["L", "Nd"]), min_size=1, max_size=10),
        min_size=1,
        max_size=10,
    )
)
def test_plain_words_always_parse(words: list[str]) -> None:
    assert [term.text for term in parse(" ".join(words)).include] == words
