"""How the console shows an email's body: sanitized, remote images held back.

Remote images are how senders learn that mail was opened; the operator reviewing a held
email should not confirm it to anyone before choosing to. So until the operator asks,
every ``<img>`` pointing outside this server becomes a placeholder.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from django.utils.safestring import SafeString, mark_safe

from mailboxes.models import Email
from mailboxes.services.rendering import html_sanitize

# The sanitizer re-serializes its output, so every tag is well formed and every attribute
# value is double-quoted with quotes inside escaped: a simple pattern is exact here.
_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_ATTR = re.compile(r'([a-zA-Z-]+)="([^"]*)"')
_REMOTE = ("http://", "https://", "//")


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    html: SafeString
    blocked_images: int


def email_body_render(*, email: Email, load_images: bool = False) -> RenderedEmail:
    if not email.html:
        text = email.text or email.markdown
        return RenderedEmail(mark_safe(f"<pre>{html.escape(text)}</pre>"), 0)  # noqa: S308
    clean = html_sanitize(email.html)
    if load_images:
        return RenderedEmail(mark_safe(clean), 0)  # noqa: S308
    blocked = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal blocked
        attrs = dict(_ATTR.findall(match.group(0)))
        if not attrs.get("src", "").lower().startswith(_REMOTE):
            return match.group(0)
        blocked += 1
        # The serializer leaves < and > unescaped inside attribute values: escape again
        # for use as text.
        label = html.escape(html.unescape(attrs.get("alt", "")) or "image")
        return f'<span class="img-blocked">[remote image: {label}]</span>'

    rewritten = _IMG.sub(replace, clean)
    return RenderedEmail(mark_safe(rewritten), blocked)  # noqa: S308
