"""The SMTP listener's STARTTLS certificate: from files, or self-signed for the embedded
default.

``SMTP_TLS_CERT_FILE`` and ``SMTP_TLS_KEY_FILE`` name a PEM certificate (chain) and its
key. Without them, ``SMTP_TLS_SELF_SIGNED`` (set by ``make run``) creates a self-signed
pair under the var directory once, so a local client can exercise STARTTLS; without
either, the listener offers no STARTTLS and so, off loopback, no submission.
"""

from __future__ import annotations

import datetime
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.conf import settings


def self_signed_pair_create(cert_file: Path, key_file: Path, *, hostname: str) -> None:
    """A self-signed certificate for ``hostname`` (and localhost), valid ten years."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName(
                list(dict.fromkeys([x509.DNSName(hostname), x509.DNSName("localhost")]))
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_file.parent.mkdir(parents=True, exist_ok=True)
    # The key is written first and owner-only; the certificate last, as the pair's marker.
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def smtp_tls_files() -> tuple[Path, Path] | None:
    """The certificate and key files STARTTLS uses, created first if self-signed."""
    if settings.SMTP_TLS_CERT_FILE and settings.SMTP_TLS_KEY_FILE:
        return Path(settings.SMTP_TLS_CERT_FILE), Path(settings.SMTP_TLS_KEY_FILE)
    if not settings.SMTP_TLS_SELF_SIGNED:
        return None
    cert_file = settings.VAR_DIR / "smtp-tls-cert.pem"
    key_file = settings.VAR_DIR / "smtp-tls-key.pem"
    if not cert_file.exists():
        self_signed_pair_create(cert_file, key_file, hostname=settings.MAIL_DOMAIN)
    return cert_file, key_file


def smtp_tls_context() -> ssl.SSLContext | None:
    """The server context STARTTLS upgrades to, or None when no certificate is set up."""
    files = smtp_tls_files()
    if files is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=files[0], keyfile=files[1])
    return context
