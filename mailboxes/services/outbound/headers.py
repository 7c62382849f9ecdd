"""Structured headers written as they are, folded only at their own whitespace.

The email package folds a header it does not know as unstructured text, and an
unstructured value with a token longer than a line is written as RFC 2047 encoded words
(``=?utf-8?q?=3Chttps...``). Receivers read ``List-Unsubscribe`` (RFC 8058), message ids
and our identity header as structured values and do not decode encoded words in them, so
these are folded the RFC 5322 way: a line break is only ever inserted before existing
whitespace, the value's characters are never changed.
"""

from __future__ import annotations

from email.headerregistry import BaseHeader, HeaderRegistry, UnstructuredHeader
from email.policy import Policy
from functools import lru_cache

# RFC 5322 2.1.1: lines SHOULD stay within 78 characters and MUST stay within 998.
HARD_LINE_LIMIT = 998

RAW_HEADERS = (
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "X-MultiMail-Identity",
    "Message-ID",
    "In-Reply-To",
    "References",
)


def raw_fold(name: str, value: str, *, max_line_length: int, linesep: str) -> str | None:
    """``name: value`` folded before whitespace to fit ``max_line_length`` where a break
    exists; None when the value cannot be written raw (non-ASCII, or a word too long for
    even the hard limit)."""
    words = value.split()
    if not value.isascii() or any(len(word) + 2 > HARD_LINE_LIMIT for word in words):
        return None
    lines: list[str] = []
    line = f"{name}:"
    for word in words:
        if line != f"{name}:" and len(line) + 1 + len(word) > max_line_length:
            lines.append(line)
            line = f" {word}"
        else:
            line = f"{line} {word}"
    if len(line) > HARD_LINE_LIMIT:
        return None
    lines.append(line)
    return linesep.join(lines) + linesep


class RawFoldedHeader(UnstructuredHeader):
    """A header whose value is kept verbatim (see the module docstring)."""

    name: str

    def fold(self, *, policy: Policy) -> str:
        folded = raw_fold(
            self.name,
            str(self),
            max_line_length=policy.max_line_length or HARD_LINE_LIMIT,
            linesep=policy.linesep,
        )
        if folded is None:
            # Not representable raw: the standard folding is the only valid form left.
            return BaseHeader.fold(self, policy=policy)  # type: ignore[arg-type]
        return folded


class _KeptFold:
    """Folding a header is most of flattening a message. A kept header object (see
    _KeptHeaderRegistry) is immutable and so is a policy, so its folded form under a
    policy is computed once: the last policy's is kept on the object (a message's
    headers are folded under the one policy of its flattening)."""

    def fold(self, *, policy: Policy) -> str:
        kept = self.__dict__.get("_kept_fold")
        if kept is None or kept[0] is not policy:
            kept = (policy, super().fold(policy=policy))  # type: ignore[misc]
            self._kept_fold = kept
        return kept[1]  # type: ignore[no-any-return]


class _KeptHeaderRegistry(HeaderRegistry):
    """Parsing header values is most of building a message, and most values recur from
    message to message (the sender, the recipients of a thread, every part's MIME
    headers). A header object is immutable (the generator folds it without changing it),
    so each (name, value) is parsed once per process and the object shared, bounded."""

    def __init__(self) -> None:
        super().__init__()
        self._parsed = lru_cache(maxsize=KEPT_HEADERS)(super().__call__)
        self._classes: dict[type, type[BaseHeader]] = {}

    def __call__(self, name: str, value: str) -> BaseHeader:
        return self._parsed(name, value)  # type: ignore[no-any-return]

    def __getitem__(self, name: str) -> type[BaseHeader]:
        # The stdlib's class for the name, with the fold kept (_KeptFold); made once per
        # header type rather than once per header.
        kind = self.registry.get(name.lower(), self.default_class)
        made = self._classes.get(kind)
        if made is None:
            made = type(f"_{kind.__name__}", (_KeptFold, kind, self.base_class), {})
            self._classes[kind] = made
        return made

    def map_to_type(self, name: str, cls: type[BaseHeader]) -> None:
        super().map_to_type(name, cls)
        self._classes.clear()


# Parsed headers kept per worker process: a few hundred bytes each.
KEPT_HEADERS = 4096


def outbound_header_registry() -> HeaderRegistry:
    registry = _KeptHeaderRegistry()
    for name in RAW_HEADERS:
        registry.map_to_type(name, RawFoldedHeader)  # type: ignore[arg-type]  # a mixin, as in the stdlib
    return registry


OUTBOUND_HEADERS = outbound_header_registry()
