"""Full-text search of a mailbox: the ``q`` query parameter of the email list.

The query syntax is small on purpose: words, "quoted phrases", ``-excluded`` words or
phrases, and ``from:`` / ``to:`` (a prefix of an address or a name; ``to:`` covers Cc too).
Every term must match; a word matches the subject, the body text, the sender, the
recipients or an attachment name.

It runs on the database's own engine, so the results and the index stay in one place:
PostgreSQL's full-text search over the generated ``search_vector`` column and its GIN index
in production, SQLite FTS5 (the ``mailboxes_email_fts`` table kept by triggers) in the
embedded default. Both are created by migration 0011; no Python code keeps them in sync.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.db import connections
from django.db.models import BooleanField, FloatField, QuerySet
from django.db.models.expressions import RawSQL

from mailboxes.models import Email

MAX_QUERY_LENGTH = 500
MAX_TERMS = 20
# A term must have something the engines index: a letter or a digit.
_INDEXABLE = re.compile(r"[^\W_]")
# One token: an optional "-", an optional "from:"/"to:" field, then a quoted phrase or a
# run of non-space characters.
_TOKEN = re.compile(r'(-?)(?:(from|to):)?(?:"([^"]*)"|([^\s"]+))', re.IGNORECASE)
# The annotation the ranked page orders by (multimail.pagination.ranked_paginate).
RANK = "search_rank"


class QueryError(ValueError):
    """A query that cannot be searched; the message says why, for ``invalid_parameter``."""


@dataclass(frozen=True, slots=True)
class Term:
    text: str
    # "" for the text of the email, else "from" or "to".
    field: str = ""
    phrase: bool = False


@dataclass(frozen=True, slots=True)
class SearchQuery:
    include: tuple[Term, ...]
    exclude: tuple[Term, ...] = field(default=())


def parse(raw: str) -> SearchQuery:
    """The query in ``raw``, or ``QueryError``: unbalanced quotes, too long, too many terms,
    or nothing left to look for (only exclusions, or only punctuation)."""
    if len(raw) > MAX_QUERY_LENGTH:
        raise QueryError(f"q must be at most {MAX_QUERY_LENGTH} characters.")
    if any(ord(char) < 32 and char not in "\t\n\r" for char in raw):
        raise QueryError("q must not contain control characters.")
    if raw.count('"') % 2:
        raise QueryError('q has an unbalanced quote: close each "phrase".')
    include: list[Term] = []
    exclude: list[Term] = []
    for match in _TOKEN.finditer(raw):
        negated, field_name, quoted, bare = match.groups()
        text = " ".join((quoted if quoted is not None else bare).split())
        if not _INDEXABLE.search(text):
            continue  # punctuation alone: neither engine indexes it
        term = Term(text=text, field=(field_name or "").lower(), phrase=quoted is not None)
        (exclude if negated else include).append(term)
    if not include:
        raise QueryError(
            'q has nothing to look for: give a word, a "phrase", from: or to: '
            "(an excluded -word alone is not a search)."
        )
    if len(include) + len(exclude) > MAX_TERMS:
        raise QueryError(f"q must have at most {MAX_TERMS} terms.")
    return SearchQuery(include=tuple(include), exclude=tuple(exclude))


def matching(queryset: QuerySet[Email], query: SearchQuery) -> QuerySet[Email]:
    """The emails of ``queryset`` that match, annotated with ``RANK`` (higher is better)."""
    if connections[queryset.db].vendor == "postgresql":
        return _postgres(queryset, query)
    return _sqlite(queryset, query)


# --- PostgreSQL: one tsquery against the weighted search_vector ------------------------
# Weights of the generated column (migration 0011): A subject, B sender, C recipients,
# D body text and attachment names. from: and to: restrict a term to B and C.
_WEIGHT = {"from": "B", "to": "C"}


def _tsquery_lexeme(text: str, weight: str) -> str:
    """A quoted to_tsquery operand that matches words starting with ``text`` in ``weight``
    (backslashes and quotes escaped, so any text is one operand)."""
    escaped = text.replace("\\", "\\\\").replace("'", "''")
    return f"'{escaped}':*{weight}"


# The parser keeps "q3-report.pdf" or "a.b_c" as one token, which the index also holds in
# its parts (file names are indexed both ways): such a term matches either form.
_JOINERS = "._-"


def _tsquery_part(term: Term) -> tuple[str, list[str]]:
    if term.field:
        return "to_tsquery('simple', %s)", [_tsquery_lexeme(term.text, _WEIGHT[term.field])]
    function = "phraseto_tsquery" if term.phrase else "plainto_tsquery"
    if not any(joiner in term.text for joiner in _JOINERS):
        return f"{function}('simple', %s)", [term.text]
    parts = f"phraseto_tsquery('simple', translate(%s, '{_JOINERS}', '   '))"
    return f"({function}('simple', %s) || {parts})", [term.text, term.text]


def _postgres(queryset: QuerySet[Email], query: SearchQuery) -> QuerySet[Email]:
    parts: list[str] = []
    params: list[Any] = []
    for term in query.include:
        sql, values = _tsquery_part(term)
        parts.append(sql)
        params += values
    for term in query.exclude:
        sql, values = _tsquery_part(term)
        parts.append(f"!!{sql}")
        params += values
    tsquery = "(" + " && ".join(parts) + ")"
    table = Email._meta.db_table
    # Cast to double: the cursor carries the rank as a Python float, which must compare
    # equal to the rank the next page computes (a real would not round-trip).
    rank = RawSQL(  # noqa: S611 -- constants only; the query text is a parameter
        f"ts_rank({table}.search_vector, {tsquery})::double precision",
        params,
        output_field=FloatField(),
    )
    matches = RawSQL(  # noqa: S611 -- constants only; the query text is a parameter
        f"{table}.search_vector @@ {tsquery}", params, output_field=BooleanField()
    )
    return queryset.filter(matches).annotate(**{RANK: rank})


# --- SQLite FTS5 -----------------------------------------------------------------------
FTS_TABLE = "mailboxes_email_fts"
# bm25 column weights, in the FTS table's column order: subject, from_address, to, cc,
# text, markdown, attachment_names (the same emphasis as PostgreSQL's weights).
_BM25_WEIGHTS = "10.0, 4.0, 2.0, 2.0, 1.0, 1.0, 1.0"
_FTS_COLUMNS = {"from": "from_address", "to": "{to cc}"}


def _fts_string(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _fts_part(term: Term) -> str:
    if term.field:
        return f"{_FTS_COLUMNS[term.field]} : {_fts_string(term.text)}*"
    return _fts_string(term.text)


def fts_match(query: SearchQuery) -> str:
    """The FTS5 MATCH expression: every included term, none of the excluded ones."""
    expression = "(" + " AND ".join(_fts_part(term) for term in query.include) + ")"
    for term in query.exclude:
        expression = f"({expression} NOT {_fts_part(term)})"
    return expression


def _sqlite(queryset: QuerySet[Email], query: SearchQuery) -> QuerySet[Email]:
    table = Email._meta.db_table
    # bm25 is lower for better matches: negated so that higher is better on both engines.
    # A row that does not match gets NULL, which the filter drops.
    rank = RawSQL(  # noqa: S611 -- constants only; the query text is a parameter
        f"(SELECT -bm25({FTS_TABLE}, {_BM25_WEIGHTS}) FROM {FTS_TABLE} "  # noqa: S608
        f"WHERE {FTS_TABLE} MATCH %s AND {FTS_TABLE}.rowid = {table}.rowid)",
        [fts_match(query)],
        output_field=FloatField(),
    )
    return queryset.annotate(**{RANK: rank}).filter(**{f"{RANK}__isnull": False})
