"""Markdown to the HTML and text parts of an outgoing email.

Agents write markdown; recipients get HTML. The HTML is sanitized after rendering because
markdown can carry raw HTML and links: nothing executable may leave this server under a
customer's name (no scripts, no event handlers, no javascript:/data: URLs).
"""

from __future__ import annotations

from dataclasses import dataclass

import html2text
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


def html_to_text(html: str) -> str:
    converter = html2text.HTML2Text()
    converter.body_width = 0  # no hard wrapping: mail clients wrap
    converter.ignore_images = True
    return converter.handle(html).strip() + "\n"


def markdown_render(*, markdown: str) -> RenderedBody:
    html = html_sanitize(_MARKDOWN.render(markdown))
    return RenderedBody(html=html, text=html_to_text(html))
