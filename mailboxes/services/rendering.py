"""Markdown to the HTML and text parts of an outgoing email.

Agents write markdown; recipients get HTML. The HTML is sanitized after rendering because
markdown can carry raw HTML and links: nothing executable may leave this server under a
customer's name (no scripts, no event handlers, no javascript:/data: URLs).
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser

import nh3
from markdown_it import MarkdownIt

# Raw HTML in markdown is rendered as text, not markup: the sanitizer is a second line of
# defence, not the only one.
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(
    ["table", "strikethrough"]
)

ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}
ALLOWED_TAGS = {
    "a", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "img", "li", "ol", "p", "pre", "s", "strong", "table", "tbody", "td", "th",
    "thead", "tr", "ul",
}  # fmt: skip
# No style, no on* handlers: attributes are an allowlist, so event handlers never pass.
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "th": {"align"},
    "td": {"align"},
    "ol": {"start"},
}


@dataclass(frozen=True, slots=True)
class RenderedBody:
    html: str
    text: str


def html_sanitize(html: str) -> str:
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


class _PlainText(HTMLParser):
    """The sanitized HTML as a person reads it in a plain-text mail client: no markup
    characters (no **, _, #, backslash escapes), links written out as "text (url)", lists
    with a dash or their number, quotes with "> ", preformatted text kept as it is."""

    _BLOCKS = frozenset(
        {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "ul", "ol", "li",
         "table", "tr", "hr"}
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._out: list[str] = []
        self._line: list[str] = []
        self._marker = ""  # the list item's "- " or "3. ", written before its first line
        self._tight = False  # the next line follows the previous one without a blank line
        self._quote = 0
        self._pre = 0
        self._table = 0
        self._lists: list[list[int]] = []  # per open list: [next number] for ol, [] for ul
        self._href: str | None = None
        self._link_text: list[str] = []
        self._cells = 0

    def _flush(self, *, tight: bool = False) -> None:
        text = "".join(self._line)
        self._line = []
        text = text.strip("\n") if self._pre else " ".join(text.split())
        if not text.strip():
            return
        indent = "  " * max(len(self._lists) - 1, 0)
        lines = text.split("\n")
        lines = [indent + self._marker + lines[0], *(indent + line for line in lines[1:])]
        self._marker = ""
        prefix = "> " * self._quote
        if self._out:
            self._out.append("\n" if self._tight else "\n\n")
        self._out.append("\n".join(prefix + line for line in lines))
        # Items of one list, rows of one table and lines broken by <br> stay together.
        self._tight = tight or bool(self._lists) or bool(self._table)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            if self._pre:
                self._line.append("\n")
            else:
                self._flush(tight=True)
            return
        if tag in self._BLOCKS:
            self._flush()
        if tag == "blockquote":
            self._quote += 1
        elif tag == "pre":
            self._pre += 1
        elif tag == "table":
            self._table += 1
        elif tag == "ul":
            self._lists.append([])
        elif tag == "ol":
            start = dict(attrs).get("start") or "1"
            self._lists.append([int(start) if start.isdigit() else 1])
        elif tag == "li" and self._lists:
            numbering = self._lists[-1]
            self._marker = f"{numbering[0]}. " if numbering else "- "
            if numbering:
                numbering[0] += 1
        elif tag == "tr":
            self._cells = 0
        elif tag in ("td", "th"):
            if self._cells:
                self._line.append(" | ")
            self._cells += 1
        elif tag == "hr":
            self._line.append("-" * 20)
            self._flush()
        elif tag == "a":
            self._href = dict(attrs).get("href") or ""
            self._link_text = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            text, href = "".join(self._link_text), self._href
            self._href = None
            shown = " ".join(text.split())
            plain = not href or shown in (href, href.removeprefix("mailto:"))
            self._line.append(text if plain else f"{text} ({href})")
            return
        if tag in self._BLOCKS:
            self._flush()
        if tag == "blockquote":
            self._quote = max(self._quote - 1, 0)
        elif tag == "pre":
            self._pre = max(self._pre - 1, 0)
        elif tag == "table":
            self._table = max(self._table - 1, 0)
            self._tight = False
        elif tag in ("ul", "ol") and self._lists:
            self._lists.pop()
            self._tight = bool(self._lists)

    def handle_data(self, data: str) -> None:
        (self._link_text if self._href is not None else self._line).append(data)

    def text(self) -> str:
        self.close()
        self._flush()
        return "".join(self._out).strip() + "\n"


def html_to_text(html: str) -> str:
    """The plain-text alternative of ``html`` (sanitized HTML, see ``_PlainText``)."""
    parser = _PlainText()
    parser.feed(html)
    return parser.text()


def markdown_render(*, markdown: str) -> RenderedBody:
    html = html_sanitize(_MARKDOWN.render(markdown))
    return RenderedBody(html=html, text=html_to_text(html))
