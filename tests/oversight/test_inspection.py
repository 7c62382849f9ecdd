"""Link and attachment warnings (oversight.inspection), case by case and by class of input."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oversight import inspection
from oversight.inspection import attachment_inspect, body_links

LABEL = st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True)
HOST = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(LABEL, min_size=1, max_size=3),
    st.sampled_from(["com", "org", "example", "co.uk"]),
)
PATH = st.from_regex(r"(/[a-z0-9]{1,8}){0,3}", fullmatch=True)


def _warnings(html: str) -> list[tuple[str, ...]]:
    return [link.warnings for link in body_links(html=html, markdown="", text="")]


def test_a_link_whose_text_names_another_site_is_flagged() -> None:
    [link] = body_links(
        html='<a href="https://clientco.com.evil.example/login">https://clientco.com/login</a>',
        markdown="",
        text="",
    )
    assert link.host == "clientco.com.evil.example"
    assert link.warnings == (
        "The text shows clientco.com but the link goes to clientco.com.evil.example.",
    )


def test_same_site_subdomains_and_www_are_not_flagged() -> None:
    html = (
        '<a href="https://login.clientco.com/x">clientco.com</a>'
        '<a href="https://clientco.com/">www.clientco.com</a>'
        '<a href="https://www.clientco.com/a?utm=1">https://clientco.com/a</a>'
        '<a href="https://clientco.com/anything">https://clientco.com</a>'
        '<a href="https://evil.example/">click here</a>'
    )
    assert _warnings(html) == [(), (), (), (), ()]


def test_a_text_that_shows_another_page_of_the_same_site_is_flagged() -> None:
    [warnings] = _warnings('<a href="https://clientco.com/reset">https://clientco.com/login</a>')
    assert warnings == (
        "The text shows https://clientco.com/login but the link opens https://clientco.com/reset.",
    )


def test_tricks_in_the_target_are_flagged() -> None:
    html = (
        '<a href="https://clientco.com@evil.example/">log in</a>'
        '<a href="http://192.0.2.7/pay">pay</a>'
        '<a href="https://xn--clentco-8ya.com/">here</a>'
        '<a href="javascript:alert(1)">open</a>'
        '<a href="mailto:thief@evil.example">billing@clientco.com</a>'
    )
    assert _warnings(html) == [
        ("The address hides its real host behind an @: it opens evil.example.",),
        ("The link goes to a bare IP address, not a domain name.",),
        (
            "International domain name clíentco.com (written xn--clentco-8ya.com): check it "
            "for look-alike letters.",
        ),
        ("Not a web link (javascript:): mail programs may run or refuse it.",),
        ("The text shows billing@clientco.com but the link writes to thief@evil.example.",),
    ]


def test_links_of_a_text_only_body_and_bare_addresses_are_listed() -> None:
    links = body_links(
        html="",
        markdown="",
        text="See [the report](https://example.org/r) or https://example.org/plain.",
    )
    assert [(link.text, link.url) for link in links] == [
        ("the report", "https://example.org/r"),
        ("https://example.org/plain", "https://example.org/plain"),
    ]
    assert all(link.warnings == () for link in links)


@settings(deadline=None)  # no timing: the machine may be busy
@given(host=HOST, path=PATH)
def test_a_link_showing_its_own_address_is_never_flagged(host: str, path: str) -> None:
    url = f"https://{host}{path}"
    assert _warnings(f'<a href="{url}">{url}</a>') == [()]


@settings(deadline=None)
@given(shown=HOST, target=HOST, path=PATH)
def test_a_link_to_another_site_than_it_shows_is_always_flagged(
    shown: str, target: str, path: str
) -> None:
    if target == shown or target.endswith(f".{shown}"):
        return
    [warnings] = _warnings(f'<a href="https://{target}{path}">https://{shown}/login</a>')
    assert warnings[0] == f"The text shows {shown} but the link goes to {target}."


def test_programs_are_marked_whatever_they_are_called() -> None:
    program = b"MZ\x90\x00\x03\x00\x00\x00"
    for name, content_type, head in (
        ("setup.exe", "application/octet-stream", b"anything"),
        ("notes.txt", "application/x-msdownload", b"text"),
        ("invoice.pdf", "application/pdf", program),
        ("run", "application/octet-stream", b"#!/bin/sh\nrm -rf ~"),
        ("lib.so", "application/octet-stream", b"\x7fELF\x02\x01"),
    ):
        fact = attachment_inspect(name=name, content_type=content_type, size=10, head=head)
        assert fact.executable, name
        assert fact.warnings[0].startswith(f"Executable: {name} is "), fact.warnings


def test_disguised_files_are_marked_and_ordinary_ones_are_not() -> None:
    def warnings(name: str, content_type: str, head: bytes) -> tuple[str, ...]:
        return attachment_inspect(name=name, content_type=content_type, size=1, head=head).warnings

    assert warnings("photo.png", "image/png", b"%PDF-1.7") == (
        "Declared as image/png, but the content is a PDF document.",
        "Named .png, but the content is a PDF document.",
    )
    assert warnings("invoice.pdf", "application/pdf", b"<!DOCTYPE html><form>") == (
        "Declared as application/pdf, but the content is a web page (HTML).",
        "Named .pdf, but the content is a web page (HTML).",
    )
    assert warnings("report.pdf", "image/jpeg", b"") == (
        "The declared type image/jpeg does not match the name (.pdf).",
    )
    for name, content_type, head in (
        ("report.pdf", "application/pdf", b"%PDF-1.4"),
        ("report.pdf", "application/octet-stream", b"%PDF-1.4"),
        (
            "memo.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            b"PK\x03\x04",
        ),
        ("legacy.doc", "application/msword", b"{\\rtf1\\ansi"),
        ("data.csv", "text/plain", b"a,b,c"),
        ("photo.jpg", "image/jpeg", b"\xff\xd8\xff\xe0"),
        ("blob", "application/octet-stream", b"\x00\x01"),
    ):
        assert warnings(name, content_type, head) == (), name


def test_a_body_is_read_for_links_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    renders: list[str] = []
    real = inspection.markdown_render

    def counting(*, markdown: str) -> Any:
        renders.append(markdown)
        return real(markdown=markdown)

    monkeypatch.setattr(inspection, "markdown_render", counting)
    monkeypatch.setattr(inspection, "_LINKS_REMEMBERED", 2)
    monkeypatch.setattr(inspection, "_links_seen", OrderedDict())
    bodies = [f"Read [this](https://example.org/{n})" for n in range(3)]
    first = inspection.body_links(html="", markdown=bodies[0], text="")
    assert inspection.body_links(html="", markdown=bodies[0], text="") == first
    assert renders == bodies[:1]
    for body in bodies[1:]:
        inspection.body_links(html="", markdown=body, text="")
    # Bounded: the oldest body was forgotten and is read again.
    assert inspection.body_links(html="", markdown=bodies[0], text="") == first
    assert renders == [*bodies, bodies[0]]
