"""Markdown rendering and sanitizing, and the content filter's rules."""

from __future__ import annotations

import re

import pytest

from mailboxes.services.content_filter import AttachmentInfo, content_report, deceptive_links
from mailboxes.services.rendering import html_sanitize, markdown_render


def test_markdown_becomes_html_and_text() -> None:
    rendered = markdown_render(markdown="# Title\n\n**bold** and a [link](https://example.org)")
    assert "<h1>Title</h1>" in rendered.html
    assert "<strong>bold</strong>" in rendered.html
    assert 'href="https://example.org"' in rendered.html
    assert "Title" in rendered.text
    assert "<" not in rendered.text.replace("<https", "")


@pytest.mark.parametrize(
    "markdown",
    [
        "<script>alert(1)</script>",
        "[x](javascript:alert(1))",
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "[x](vbscript:msgbox)",
        '<img src="x" onerror="alert(1)">',
        "![pic](javascript:alert(1))",
    ],
)
def test_nothing_executable_survives(markdown: str) -> None:
    html = markdown_render(markdown=markdown).html
    assert "<script" not in html
    assert not re.search(r"<[^>]*\son\w+=", html)  # as text it is harmless, never in a tag
    assert 'href="javascript' not in html
    assert 'src="javascript' not in html
    assert 'href="data:' not in html
    assert 'href="vbscript' not in html


@pytest.mark.parametrize(
    "html",
    [
        '<a href="javascript:alert(1)">x</a>',
        '<a href="https://ok.example" onclick="steal()">x</a>',
        '<p style="background:url(javascript:x)" onmouseover="x()">t</p>',
        "<iframe src=https://evil.example></iframe>",
        "<svg><script>alert(1)</script></svg>",
    ],
)
def test_sanitizer_strips_handlers_and_schemes(html: str) -> None:
    clean = html_sanitize(html)
    for needle in ("javascript:", "onclick", "onmouseover", "style=", "<iframe", "<script"):
        assert needle not in clean


def test_allowed_schemes_are_kept() -> None:
    html = markdown_render(
        markdown="[a](https://a.example) [b](http://b.example) [c](mailto:c@d.example)"
    ).html
    assert 'href="https://a.example"' in html
    assert 'href="http://b.example"' in html
    assert 'href="mailto:c@d.example"' in html


def test_deceptive_links() -> None:
    html = (
        '<a href="https://evil.example/x">https://bank.example/login</a>'
        '<a href="https://www.bank.example/x">bank.example</a>'
        '<a href="https://evil.example/x">click here</a>'
    )
    assert deceptive_links(html) == [("https://evil.example/x", "https://bank.example/login")]


def test_content_report_rules() -> None:
    clean = content_report(subject="Hi", markdown="Hello", html="<p>Hello</p>", attachments=[])
    assert clean.rejection is None
    assert clean.findings == ()
    exe = content_report(
        subject="Hi",
        markdown="x",
        html="",
        attachments=[AttachmentInfo(filename="Report.PDF.scr", content_type="application/pdf")],
    )
    assert exe.rejection is not None
    assert exe.rejection.startswith("executable attachment")
    mime = content_report(
        subject="Hi",
        markdown="x",
        html="",
        attachments=[AttachmentInfo(filename="a.txt", content_type="text/javascript; charset=x")],
    )
    assert mime.rejection is not None
    assert mime.rejection.startswith("prohibited attachment type")
    # Credential wording alone, or a mismatched link alone, is not enough to refuse: each
    # is a finding for the operator.
    wording = content_report(
        subject="Please verify your account",
        markdown="Verify your account at [our site](https://ok.example)",
        html='<a href="https://ok.example">our site</a>',
        attachments=[],
    )
    assert wording.rejection is None
    assert wording.findings == (
        "asks the recipient for credentials or payment details ('verify your account')",
    )
    link_only = content_report(
        subject="News",
        markdown="x",
        html='<a href="https://evil.example">bank.example</a>',
        attachments=[],
    )
    assert link_only.rejection is None
    assert link_only.findings == (
        "the link text 'bank.example' hides a different destination (https://evil.example)",
    )
    phishing = content_report(
        subject="Urgent: confirm your password",
        markdown="x",
        html='<a href="https://evil.example">bank.example</a>',
        attachments=[],
    )
    assert phishing.rejection is not None
    assert phishing.rejection.startswith("phishing pattern")
