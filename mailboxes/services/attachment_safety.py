"""Attachment names as the recipient's computer will see them, and whether a file runs code.

A name is judged after it is normalized the way file systems and mail clients read it:
Unicode NFC; invisible characters (zero-width, bidi overrides, other format characters)
and control characters dropped; an NTFS alternate-stream suffix (``a.exe::$DATA``,
``a.txt:b``) cut; trailing dots and spaces dropped, as Windows does. ``invoice\u202efdp.exe``
or ``setup.exe.`` would otherwise pass an extension check and still open as a program.

Every path that carries attachments stores and sends the normalized name (the send and
reply serializers, inbound MIME from local delivery or the SMTP listener, and Postmark's
inbound JSON) and judges it here, together with the file's first bytes: a program is a
program whatever it is called.
"""

from __future__ import annotations

import unicodedata
from pathlib import PurePosixPath

# Attachments that run code when opened on common desktops.
EXECUTABLE_EXTENSIONS = frozenset(
    {
        ".exe", ".bat", ".cmd", ".com", ".scr", ".pif", ".cpl", ".msi", ".msp", ".dll",
        ".js", ".jse", ".vbs", ".vbe", ".wsf", ".wsh", ".hta", ".ps1", ".psm1", ".jar",
        ".lnk", ".reg", ".app", ".apk", ".sh", ".iso",
    }
)  # fmt: skip
PROHIBITED_MIME_TYPES = frozenset(
    {
        "application/x-msdownload",
        "application/x-msdos-program",
        "application/x-dosexec",
        "application/x-executable",
        "application/vnd.microsoft.portable-executable",
        "application/x-ms-installer",
        "application/x-msi",
        "application/hta",
        "application/x-sh",
        "application/x-bat",
        "application/javascript",
        "text/javascript",
        "application/x-javascript",
        "application/java-archive",
        "application/vnd.android.package-archive",
        "application/x-ms-shortcut",
    }
)
# Native program formats, by their first bytes: Windows (DOS/PE), Linux (ELF), macOS
# (Mach-O, 32/64-bit either byte order, and universal binaries, which share Java's magic).
PROGRAM_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"MZ", "exe"),
    (b"\x7fELF", "elf"),
    (b"\xfe\xed\xfa\xce", "macho"),
    (b"\xfe\xed\xfa\xcf", "macho"),
    (b"\xce\xfa\xed\xfe", "macho"),
    (b"\xcf\xfa\xed\xfe", "macho"),
    (b"\xca\xfe\xba\xbe", "macho"),
)
# Enough leading bytes for every signature above.
HEAD_BYTES = 16
MAX_NAME_LENGTH = 200
FALLBACK_NAME = "attachment"

# Characters that render as nothing but are not format characters (category Cf): Hangul
# fillers and the Braille blank, used to pad names.
_INVISIBLE = frozenset({"\u115f", "\u1160", "\u3164", "\uffa0", "\u2800", "\u180e"})


def _kept(char: str) -> bool:
    category = unicodedata.category(char)
    # Cc: control characters; Cf: zero-width, bidi embeddings/overrides/isolates, soft
    # hyphen, BOM, word joiners; Co/Cn/Cs: private, unassigned, lone surrogates; Zl/Zp:
    # line and paragraph separators.
    return category not in {"Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp"} and char not in _INVISIBLE


def attachment_name_normalize(name: str) -> str:
    """The name a recipient's system shows and saves (see the module docstring)."""
    # Invisible characters go first: one between a letter and its combining accent would
    # otherwise keep the pair from composing.
    text = "".join(
        " " if unicodedata.category(char) == "Zs" else char for char in name if _kept(char)
    )
    text = unicodedata.normalize("NFC", text)
    # Separators would make a path: the file name is what follows them, so keep it whole.
    text = text.replace("/", "_").replace("\\", "_")
    # NTFS writes "a.txt:b.exe" into a stream of a.txt, and "a.exe::$DATA" is a.exe.
    text = text.split(":", 1)[0]
    text = " ".join(text.split())[:MAX_NAME_LENGTH]
    # Windows drops trailing dots and spaces ("setup.exe. " is setup.exe).
    text = text.rstrip(". ")
    return text if text.strip(".") else FALLBACK_NAME


def program_kind(head: bytes) -> str | None:
    """The native program format the bytes start with, if any."""
    for signature, kind in PROGRAM_SIGNATURES:
        if head.startswith(signature):
            return kind
    return None


def executable_reason(*, name: str, content_type: str, head: bytes) -> str | None:
    """Why this attachment would run code when opened, or None. ``name`` is judged as it
    normalizes; ``head`` is the file's first bytes (at least ``HEAD_BYTES``)."""
    normalized = attachment_name_normalize(name)
    extension = PurePosixPath(normalized.lower()).suffix
    if extension in EXECUTABLE_EXTENSIONS:
        return f"executable attachment {normalized!r} ({extension} files are not allowed)"
    if content_type.split(";")[0].strip().lower() in PROHIBITED_MIME_TYPES:
        return f"prohibited attachment type {content_type!r} on {normalized!r}"
    kind = program_kind(head)
    if kind is not None:
        return f"executable attachment {normalized!r} (its content is a program: {kind})"
    return None
