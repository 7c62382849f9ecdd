"""HTTPS delivery connects to the vetted address yet verifies the certificate for the name
(SNI + hostname check), so pinning the IP does not weaken TLS."""

from __future__ import annotations

import datetime
import ssl
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mailboxes.models import WebhookDelivery
from mailboxes.services import netguard, webhooks

NAME = "hooks.customer.test"


def _certificate(tmp_path: Any) -> tuple[str, str, str]:
    """A CA and a leaf certificate for NAME; returns (ca path, cert path, key path)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = (tmp_path / n for n in ("ca.pem", "cert.pem", "key.pem"))
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(ca_path), str(cert_path), str(key_path)


@pytest.fixture
def tls_receiver(
    start_receiver: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, allow_private: None
) -> Any:
    ca_path, cert_path, key_path = _certificate(tmp_path)
    receiver = start_receiver()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    receiver.server.socket = context.wrap_socket(receiver.server.socket, server_side=True)
    # Trust the test CA instead of the public bundle.
    monkeypatch.setattr(netguard.certifi, "where", lambda: ca_path)
    return receiver


def _delivery(owner: Any, url: str) -> WebhookDelivery:
    # A mailbox-level delivery (no subscription): signed with the mailbox's secret.
    return WebhookDelivery.objects.create(
        account=owner.account,
        mailbox=owner.mailbox,
        event_type="message.sent",
        url=url,
        payload={"data": {}},
    )


def test_https_to_pinned_address_with_sni(
    owner: Any, tls_receiver: Any, fake_hosts: dict[str, list[str]]
) -> None:
    fake_hosts[NAME] = ["127.0.0.1"]
    delivery = _delivery(owner, f"https://{NAME}:{tls_receiver.port}/hook")
    webhooks.webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.DELIVERED, delivery.last_error
    assert tls_receiver.requests[0].headers["Host"] == f"{NAME}:{tls_receiver.port}"


def test_certificate_for_another_name_is_refused(
    owner: Any, tls_receiver: Any, fake_hosts: dict[str, list[str]]
) -> None:
    fake_hosts["impostor.customer.test"] = ["127.0.0.1"]
    delivery = _delivery(owner, f"https://impostor.customer.test:{tls_receiver.port}/hook")
    webhooks.webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert delivery.response_status is None
    assert delivery.last_error
    assert tls_receiver.requests == []
