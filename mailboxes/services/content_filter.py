"""The outbound content filter: what may not leave this server under a customer's name.

It runs on the rendered email (after markdown became HTML) so it sees the links exactly as
recipients will. A hit rejects the email with ``failure_reason`` "content_rejected: <reason>";
nothing is sent. The rules are deliberately few and high-precision: a false positive blocks
an agent's legitimate mail, so each rule targets a pattern with no ordinary use.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urlsplit

from mailboxes.services.attachment_safety import executable_reason

# Wording that asks the recipient to hand over credentials or payment details.
_CREDENTIAL_HARVEST = re.compile(
    r"\b(verify|confirm|update|validate|re-?enter|unlock|restore)\s+(your\s+)?"
    r"(account|password|login|credentials|identity|billing|payment|bank|card)"
    r"|\b(account|mailbox)\s+(will\s+be|has\s+been)\s+(suspended|locked|closed|disabled)"
    r"|\benter\s+your\s+(password|pin|credentials|card\s+number)",
    re.IGNORECASE,
)
# Link text that reads like an address: "paypal.com", "https://bank.example/login".
_HOSTLIKE = re.compile(r"^(?:https?://)?([a-z0-9-]+(?:\.[a-z0-9-]+)+)(?:[/:?#]\S*)?$", re.I)


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    filename: str
    content_type: str
    # The file's first bytes (attachment_safety.HEAD_BYTES): programs are told by them.
    head: bytes = b""


class _LinkCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href") or ""
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((self._href, "".join(self._text).strip()))
            self._href = None


def _registered_host(host: str) -> str:
    """The last two labels: good enough to tell bank.example from evil.example."""
    return ".".join(host.lower().rstrip(".").split(".")[-2:])


def html_links(html: str) -> list[tuple[str, str]]:
    """Every ``<a href>`` of ``html`` as (href, visible text), in document order."""
    collector = _LinkCollector()
    collector.feed(html)
    collector.close()
    return collector.links


def deceptive_links(html: str) -> list[tuple[str, str]]:
    """Links whose visible text names one host while the href goes to another."""
    found = []
    for href, text in html_links(html):
        shown = _HOSTLIKE.match(text)
        target = urlsplit(href).hostname if href.startswith(("http://", "https://")) else None
        if shown and target and _registered_host(shown.group(1)) != _registered_host(target):
            found.append((href, text))
    return found


@dataclass(frozen=True, slots=True)
class ContentReport:
    # Why the email must not be sent, or None when it may go.
    rejection: str | None
    # What the filter noticed without refusing the email: the operator who decides on it
    # sees these (a rule that refuses needs two signals together; each alone is a finding).
    findings: tuple[str, ...] = ()


def _attachment_rejection(attachments: Sequence[AttachmentInfo]) -> str | None:
    for attachment in attachments:
        reason = executable_reason(
            name=attachment.filename, content_type=attachment.content_type, head=attachment.head
        )
        if reason is not None:
            return reason
    return None


def content_report(
    *, subject: str, markdown: str, html: str, attachments: Sequence[AttachmentInfo]
) -> ContentReport:
    """Whether the email may be sent, and what the operator should know about it."""
    rejection = _attachment_rejection(attachments)
    if rejection is not None:
        return ContentReport(rejection)
    wording = _CREDENTIAL_HARVEST.search(f"{subject}\n{markdown}")
    links = deceptive_links(html)
    if wording and links:
        href, text = links[0]
        return ContentReport(
            f"phishing pattern: asks for credentials and the link text {text!r} "
            f"hides a different destination ({href})"
        )
    findings = [
        f"the link text {text!r} hides a different destination ({href})" for href, text in links
    ]
    if wording:
        findings.append(f"asks the recipient for credentials or payment details ({wording[0]!r})")
    return ContentReport(None, tuple(findings))
