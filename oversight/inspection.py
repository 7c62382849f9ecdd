"""What the operator is warned about in a held email's links and attachments.

Pure functions over content already loaded: ``oversight.facts`` gathers the rows and calls
these. Links are read with the standard library's HTML parser (through the content filter's
link collector), never with patterns over markup; the patterns below only look at a link's
visible text or at plain text. A warning is worded for the operator, in one sentence.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from email.utils import parseaddr
from html.parser import HTMLParser
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from mailboxes.services.attachment_safety import (
    EXECUTABLE_EXTENSIONS,
    PROGRAM_SIGNATURES,
    PROHIBITED_MIME_TYPES,
)
from mailboxes.services.content_filter import html_links
from mailboxes.services.rendering import markdown_render

# --- Links ---------------------------------------------------------------------------------

SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
# Visible text that reads as a web address: "clientco.com", "https://clientco.com/login".
_ADDRESS_TEXT = re.compile(
    r"^(?:[a-z][a-z0-9+.-]*://)?(?:[^\s/?#@]+@)?"
    r"((?:[\w-]+\.)+(?:[^\W\d_]{2,}|xn--[\w-]+))\.?(?::\d+)?(?:[/?#]\S*)?$",
    re.IGNORECASE,
)
# Web addresses in plain text, which mail programs turn into links.
_BARE_URL = re.compile(r"\bhttps?://[^\s<>\"'()\[\]]+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class LinkFact:
    text: str
    url: str
    # The host the link really opens, in the ASCII form that cannot hide look-alike letters.
    host: str
    warnings: tuple[str, ...]


def _ascii_host(host: str) -> str:
    host = host.lower().rstrip(".")
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def _unicode_host(host: str) -> str:
    try:
        return host.encode("ascii").decode("idna")
    except UnicodeError:
        return host


def _site(host: str) -> str:
    return host.removeprefix("www.")


def _same_site(shown: str, target: str) -> bool:
    """The target is the shown host or one of its subdomains (www. aside)."""
    shown, target = _site(_ascii_host(shown)), _site(_ascii_host(target))
    return target == shown or target.endswith(f".{shown}")


def _host_and_path(address: str) -> tuple[str, str]:
    """The site and path an address names (query and fragment aside: tracking parameters
    are not a different page)."""
    address = address.strip()
    try:
        parts = urlsplit(address if "://" in address else f"//{address}")
        host = parts.hostname or ""
    except ValueError:  # an unparsable host such as "[x"
        return "", ""
    return _site(_ascii_host(host)), unquote(parts.path).rstrip("/")


def _link_warnings(text: str, url: str) -> tuple[str, tuple[str, ...]]:
    """(host, warnings) for a link whose visible text is ``text`` and target ``url``."""
    if url.startswith("#"):  # a place in the message itself
        return "", ()
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return "", ("The link's address cannot be read: mail programs may open anything.",)
    scheme = parts.scheme.lower()
    if scheme == "mailto":
        target = parseaddr(unquote(parts.path))[1].lower()
        shown = parseaddr(text)[1].lower() if "@" in text else ""
        if shown and "@" in shown and shown != target:
            return target, (f"The text shows {shown} but the link writes to {target}.",)
        return target, ()
    if scheme not in SAFE_SCHEMES:
        label = f"{scheme}:" if scheme else "a relative address"
        return "", (f"Not a web link ({label}): mail programs may run or refuse it.",)
    try:
        raw_host = parts.hostname or ""
    except ValueError:  # an unparsable host such as "[x"
        raw_host = ""
    host = _ascii_host(raw_host)
    warnings: list[str] = []
    if host and _ADDRESS_TEXT.match(text.strip()):
        shown_host, shown_path = _host_and_path(text)
        if not _same_site(shown_host, host):
            warnings.append(f"The text shows {shown_host} but the link goes to {host}.")
        elif shown_path and shown_path != _host_and_path(url)[1]:
            warnings.append(f"The text shows {text.strip()} but the link opens {url.strip()}.")
    if "@" in parts.netloc:
        warnings.append(f"The address hides its real host behind an @: it opens {host}.")
    try:
        ipaddress.ip_address(raw_host)
        warnings.append("The link goes to a bare IP address, not a domain name.")
    except ValueError:
        pass
    if any(label.startswith("xn--") for label in host.split(".")):
        warnings.append(
            f"International domain name {_unicode_host(host)} (written {host}): check it for "
            "look-alike letters."
        )
    return host, tuple(warnings)


class _TextOutsideLinks(HTMLParser):
    """The text of a document outside its anchors (and outside scripts and styles)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("a", "script", "style"):
            self._skipping.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._skipping:
            while self._skipping and self._skipping.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


# Bodies whose links this process has read: the pending list and the queue show the same
# held emails poll after poll, and rendering a body to find its links is most of a read.
_LINKS_REMEMBERED = 2048
_links_seen: OrderedDict[bytes, tuple[LinkFact, ...]] = OrderedDict()
_links_lock = threading.Lock()


def body_links(*, html: str, markdown: str, text: str) -> tuple[LinkFact, ...]:
    """Every link of the body, each once, in order: the HTML part's anchors (rendered from
    markdown when there is no HTML part), then web addresses written as text, which mail
    programs turn into links. The same body always has the same links, so they are kept
    per process under the body's digest (the digest, not the body, so memory stays small)."""
    digest = hashlib.blake2b(
        b"\0".join(part.encode("utf-8", "surrogatepass") for part in (html, markdown, text)),
        digest_size=16,
    ).digest()
    with _links_lock:
        known = _links_seen.get(digest)
        if known is not None:
            _links_seen.move_to_end(digest)
            return known
    links = _links_in(html=html, markdown=markdown, text=text)
    with _links_lock:
        _links_seen[digest] = links
        if len(_links_seen) > _LINKS_REMEMBERED:
            _links_seen.popitem(last=False)
    return links


def _links_in(*, html: str, markdown: str, text: str) -> tuple[LinkFact, ...]:
    source = html or markdown_render(markdown=markdown or text).html
    pairs = [(href, " ".join(label.split())) for href, label in html_links(source) if href]
    outside = _TextOutsideLinks()
    outside.feed(source)
    outside.close()
    linked = {href.strip() for href, _ in pairs}
    for found in _BARE_URL.findall(" ".join(outside.parts)):
        url = found.rstrip(".,;:!?")
        if url not in linked:
            linked.add(url)
            pairs.append((url, url))
    facts: list[LinkFact] = []
    seen: set[tuple[str, str]] = set()
    for url, label in pairs:
        if (url, label) in seen:
            continue
        seen.add((url, label))
        host, warnings = _link_warnings(label, url)
        facts.append(LinkFact(text=label[:300], url=url.strip(), host=host, warnings=warnings))
    return tuple(facts)


# --- Attachments ---------------------------------------------------------------------------

# (family, what the operator is told the bytes are, the MIME type reported by the API)
_KINDS: dict[str, tuple[str, str]] = {
    "pdf": ("a PDF document", "application/pdf"),
    "png": ("a PNG image", "image/png"),
    "jpeg": ("a JPEG image", "image/jpeg"),
    "gif": ("a GIF image", "image/gif"),
    "webp": ("a WebP image", "image/webp"),
    "zip": ("a ZIP archive (or an Office document)", "application/zip"),
    "ole": ("a legacy Office or Windows Installer file", "application/x-ole-storage"),
    "gzip": ("a gzip archive", "application/gzip"),
    "rar": ("a RAR archive", "application/vnd.rar"),
    "7z": ("a 7-Zip archive", "application/x-7z-compressed"),
    "rtf": ("an RTF document", "application/rtf"),
    "html": ("a web page (HTML)", "text/html"),
    "exe": ("a Windows program", "application/vnd.microsoft.portable-executable"),
    "elf": ("a Linux program", "application/x-executable"),
    "macho": ("a macOS or Java program", "application/x-mach-binary"),
    "script": ("a script (#!)", "text/x-script"),
}
PROGRAMS = frozenset({"exe", "elf", "macho", "script"})
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole"),
    (b"\x1f\x8b", "gzip"),
    (b"Rar!\x1a\x07", "rar"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"{\\rtf", "rtf"),
    *PROGRAM_SIGNATURES,
    (b"#!", "script"),
)
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<script", b"<body")
# How many leading bytes the sniffing needs (facts reads only these from the database).
SNIFF_BYTES = 64

_EXTENSION_FAMILIES = {
    ".pdf": "pdf", ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".gif": "gif",
    ".webp": "webp", ".zip": "zip", ".docx": "zip", ".xlsx": "zip", ".pptx": "zip",
    ".odt": "zip", ".ods": "zip", ".odp": "zip", ".epub": "zip", ".jar": "zip", ".apk": "zip",
    ".doc": "ole", ".xls": "ole", ".ppt": "ole", ".msg": "ole", ".msi": "ole",
    ".gz": "gzip", ".tgz": "gzip", ".rar": "rar", ".7z": "7z", ".rtf": "rtf",
    ".html": "html", ".htm": "html", ".exe": "exe", ".dll": "exe", ".scr": "exe",
    ".txt": "text", ".csv": "text", ".md": "text", ".json": "text", ".xml": "text",
    ".ics": "text", ".log": "text", ".eml": "text",
}  # fmt: skip
_TYPE_FAMILIES = {
    "application/pdf": "pdf", "application/x-pdf": "pdf", "image/png": "png",
    "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/pjpeg": "jpeg", "image/gif": "gif",
    "image/webp": "webp", "application/zip": "zip", "application/x-zip-compressed": "zip",
    "application/epub+zip": "zip", "application/java-archive": "zip",
    "application/vnd.android.package-archive": "zip", "application/msword": "ole",
    "application/vnd.ms-excel": "ole", "application/vnd.ms-powerpoint": "ole",
    "application/vnd.ms-outlook": "ole", "application/x-msi": "ole",
    "application/x-ms-installer": "ole", "application/gzip": "gzip",
    "application/x-gzip": "gzip", "application/vnd.rar": "rar",
    "application/x-rar-compressed": "rar", "application/x-7z-compressed": "7z",
    "application/rtf": "rtf", "text/rtf": "rtf", "text/html": "html",
    "application/xhtml+xml": "html", "application/x-msdownload": "exe",
    "application/x-dosexec": "exe", "application/x-msdos-program": "exe",
    "application/vnd.microsoft.portable-executable": "exe", "application/x-executable": "elf",
    "application/json": "text", "application/xml": "text", "message/rfc822": "text",
}  # fmt: skip
_ZIP_TYPE_PREFIXES = ("application/vnd.openxmlformats-officedocument.", "application/vnd.oasis.")
# Word opens RTF saved as .doc: that pair is ordinary, not a disguise.
_COMPATIBLE = frozenset({("rtf", "ole"), ("ole", "rtf")})


@dataclass(frozen=True, slots=True)
class AttachmentFact:
    name: str
    content_type: str
    size: int
    # The MIME type of what the bytes are, when they have a known signature.
    detected_type: str | None
    executable: bool
    warnings: tuple[str, ...]


def _sniff(head: bytes) -> str | None:
    for magic, family in _MAGIC:
        if head.startswith(magic):
            return family
    if head[8:12] == b"WEBP" and head.startswith(b"RIFF"):
        return "webp"
    lowered = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return "html" if lowered.startswith(_HTML_STARTS) else None


def _type_family(content_type: str) -> str | None:
    base = content_type.split(";")[0].strip().lower()
    if base in _TYPE_FAMILIES:
        return _TYPE_FAMILIES[base]
    if base.startswith(_ZIP_TYPE_PREFIXES):
        return "zip"
    if base.startswith("text/"):
        return "text"
    return None  # generic (application/octet-stream) or not one compared here


def _differs(one: str, other: str) -> bool:
    return one != other and (one, other) not in _COMPATIBLE


def attachment_inspect(*, name: str, content_type: str, size: int, head: bytes) -> AttachmentFact:
    """Mark programs, and files whose bytes, declared type and name disagree."""
    extension = PurePosixPath(name.lower()).suffix
    sniffed = _sniff(head)
    declared = _type_family(content_type)
    named = _EXTENSION_FAMILIES.get(extension)
    warnings: list[str] = []
    executable = (
        extension in EXECUTABLE_EXTENSIONS
        or content_type.split(";")[0].strip().lower() in PROHIBITED_MIME_TYPES
        or sniffed in PROGRAMS
    )
    if executable:
        what = _KINDS[sniffed][0] if sniffed in PROGRAMS else "a program or script"
        warnings.append(f"Executable: {name} is {what}; opening it runs code.")
    if sniffed is not None:
        label = _KINDS[sniffed][0]
        if declared is not None and _differs(declared, sniffed):
            warnings.append(f"Declared as {content_type}, but the content is {label}.")
        if named is not None and _differs(named, sniffed):
            warnings.append(f"Named {extension}, but the content is {label}.")
    elif declared is not None and named is not None and _differs(declared, named):
        warnings.append(f"The declared type {content_type} does not match the name ({extension}).")
    return AttachmentFact(
        name=name,
        content_type=content_type,
        size=size,
        detected_type=_KINDS[sniffed][1] if sniffed else None,
        executable=executable,
        warnings=tuple(warnings),
    )
