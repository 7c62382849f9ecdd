"""Whatever markdown an agent sends, nothing executable leaves under a customer's name.

Hypothesis builds markdown (and raw HTML for the sanitizer alone) out of the usual XSS
vectors mixed with arbitrary text; the rendered HTML is parsed back and checked:
only allowlisted tags, no ``on*`` attributes, no URL whose scheme is not http(s)/mailto
(which rules out javascript:, vbscript: and data:, however they are spelled).
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailboxes.services.rendering import (
    ALLOWED_TAGS,
    ALLOWED_URL_SCHEMES,
    html_sanitize,
    markdown_render,
)

VECTORS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    '<img src="x" OnError="alert(1)">',
    "<svg/onload=alert(1)>",
    "<iframe src=javascript:alert(1)></iframe>",
    '<a href="javascript:alert(1)">x</a>',
    "<a href='JaVaScRiPt:alert(1)'>x</a>",
    '<a href="java&#x09;script:alert(1)">x</a>',
    '<a href="&#106;avascript:alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<img src="data:image/svg+xml,<svg onload=alert(1)>">',
    '<body onload="alert(1)">',
    '<div style="background:url(javascript:alert(1))">x</div>',
    "<object data=javascript:alert(1)></object>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<!--<script>alert(1)</script>-->",
    "[click](javascript:alert(1))",
    "[click](JAVASCRIPT:alert(1))",
    "[click](java\tscript:alert(1))",
    "[click](<javascript:alert(1)>)",
    "[click](data:text/html,<script>alert(1)</script>)",
    "![img](javascript:alert(1))",
    "![img](data:image/png;base64,AAAA)",
    "<javascript:alert(1)>",
    "[ref][1]\n\n[1]: javascript:alert(1)",
    "[ok](https://example.com/?q=<script>)",
    "`<script>alert(1)</script>`",
    "```html\n<script>alert(1)</script>\n```",
    "| a | b |\n|---|---|\n| <img src=x onerror=alert(1)> | [x](javascript:1) |",
]

markdown_text = st.lists(
    st.one_of(
        st.sampled_from(VECTORS),
        st.text(max_size=40),
        st.sampled_from(["\n", "\n\n", "# ", "> ", "- ", "1. ", "**", "_", "`", "[", "](", ")"]),
    ),
    max_size=12,
).map("".join)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [(tag, name, value or "") for name, value in attrs]

    handle_startendtag = handle_starttag


_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):")


def _url_scheme(value: str) -> str | None:
    # Browsers drop ASCII whitespace and control characters inside a scheme and ignore
    # case: do the same before judging it.
    squeezed = re.sub(r"[\x00-\x20\x7f]", "", html.unescape(value)).lower()
    match = _SCHEME.match(squeezed)
    return match.group(1) if match else None


def assert_inert(rendered: str) -> None:
    collector = _Collector()
    collector.feed(rendered)
    collector.close()
    assert set(collector.tags) <= ALLOWED_TAGS, (collector.tags, rendered)
    for tag, name, value in collector.attributes:
        assert not name.lower().startswith("on"), (tag, name, rendered)
        assert name.lower() not in {"style", "srcdoc", "formaction"}, (tag, name, rendered)
        if name.lower() in {"href", "src", "action", "background", "poster", "xlink:href"}:
            scheme = _url_scheme(value)
            assert scheme is None or scheme in ALLOWED_URL_SCHEMES, (tag, name, value)
    # Text that merely reads "<script" is escaped; only markup would start with it.
    assert "<script" not in rendered.lower()


@settings(max_examples=200, deadline=None, derandomize=True)
@given(markdown_text)
@example("".join(VECTORS))
def test_rendered_markdown_is_inert(markdown: str) -> None:
    rendered = markdown_render(markdown=markdown)
    assert_inert(rendered.html)


raw_html = st.lists(
    st.one_of(
        st.sampled_from(VECTORS),
        st.builds(
            lambda tag, attr, scheme, body: f'<{tag} {attr}="{scheme}:alert(1)">{body}</{tag}>',
            st.sampled_from(["a", "img", "iframe", "form", "video", "svg", "math", "p", "td"]),
            st.sampled_from(["href", "src", "onclick", "onmouseover", "style", "action", "HREF"]),
            st.sampled_from(
                ["javascript", "JavaScript", "data", "vbscript", "https", "java\nscript"]
            ),
            st.text(max_size=10),
        ),
        st.text(max_size=30),
    ),
    max_size=8,
).map("".join)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(raw_html)
def test_sanitizer_leaves_nothing_executable(fragment: str) -> None:
    assert_inert(html_sanitize(fragment))
