"""Compliance: identity signing key, outbound headers, footer, unsubscribe, region block."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import Client

from accounts.models import Account
from mailboxes.models import Direction, Email, EmailStatus, Suppression
from mailboxes.services.compliance import footer_text, outbound_headers
from mailboxes.services.inbound.receive import inbound_accepts, inbound_receive
from multimail.ids import new_id
from tests.conftest import assert_error


def outbound_email(owner: Any, to: list[str] | None = None) -> Email:
    return Email.objects.create(
        account=owner.account,
        mailbox=owner.mailbox,
        direction=Direction.OUTBOUND,
        status=EmailStatus.SENDING,
        from_address=owner.mailbox.address,
        to=to or ["Bob <bob@example.net>"],
        subject="Hello",
        thread_id=new_id(),
    )


def b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_identity_header_verifies_with_published_key(owner: Any) -> None:
    published = Client().get("/.well-known/multimail-signing-key")
    assert published.status_code == 200
    document = published.json()
    assert document["algorithm"] == "ES256"
    assert document["jwk"]["crv"] == "P-256"
    pem_key = serialization.load_pem_public_key(document["public_key_pem"].encode())
    assert isinstance(pem_key, ec.EllipticCurvePublicKey)
    jwk = document["jwk"]
    jwk_key = ec.EllipticCurvePublicNumbers(
        int.from_bytes(b64url(jwk["x"]), "big"),
        int.from_bytes(b64url(jwk["y"]), "big"),
        ec.SECP256R1(),
    ).public_key()

    headers = outbound_headers(email=outbound_email(owner))
    payload, signature = headers["X-MultiMail-Identity"].split(".")
    # As a receiver would: verify over the ASCII of the first part, then read the claim.
    for key in (pem_key, jwk_key):
        key.verify(b64url(signature), payload.encode(), ec.ECDSA(hashes.SHA256()))
    claim = json.loads(b64url(payload))
    assert claim["operator"] == owner.account.name
    assert claim["account"] == owner.account.slug
    assert claim["mailbox"] == owner.mailbox.address
    assert claim["oversight_mode"] == owner.mailbox.oversight_mode
    assert claim["ai_generated"] is False
    assert claim["kid"] == document["kid"]
    assert isinstance(claim["iat"], int)

    tampered = (
        base64.urlsafe_b64encode(json.dumps({**claim, "mailbox": "evil@example.com"}).encode())
        .decode()
        .rstrip("=")
    )
    with pytest.raises(InvalidSignature):
        pem_key.verify(b64url(signature), tampered.encode(), ec.ECDSA(hashes.SHA256()))


def test_key_from_setting_is_used(settings: Any) -> None:
    from mailboxes.services import signing

    key = ec.generate_private_key(ec.SECP256R1())
    settings.MULTIMAIL_SIGNING_KEY_PEM = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    signing.signing_key.cache_clear()
    try:
        document = Client().get("/.well-known/multimail-signing-key").json()
        expected = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        assert document["public_key_pem"] == expected.decode()
    finally:
        signing.signing_key.cache_clear()


def test_generated_key_is_kept_in_file(settings: Any, tmp_path: Any) -> None:
    from mailboxes.services import signing

    settings.MULTIMAIL_SIGNING_KEY_PEM = ""
    settings.MULTIMAIL_SIGNING_KEY_FILE = tmp_path / "var" / "signing-key.pem"
    signing.signing_key.cache_clear()
    try:
        first = signing.public_key_document()["kid"]
        signing.signing_key.cache_clear()
        assert signing.public_key_document()["kid"] == first
        assert (tmp_path / "var" / "signing-key.pem").stat().st_mode & 0o777 == 0o600
    finally:
        signing.signing_key.cache_clear()


def test_ai_disclosure_header(owner: Any) -> None:
    assert "X-AI-Generated" not in outbound_headers(email=outbound_email(owner))
    owner.mailbox.ai_disclosure = True
    owner.mailbox.save(update_fields=["ai_disclosure"])
    headers = outbound_headers(email=outbound_email(owner))
    assert headers["X-AI-Generated"] == "true"
    claim = json.loads(b64url(headers["X-MultiMail-Identity"].split(".")[0]))
    assert claim["ai_generated"] is True


def test_list_unsubscribe_headers(owner: Any, settings: Any) -> None:
    headers = outbound_headers(email=outbound_email(owner))
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https_part, mailto_part = headers["List-Unsubscribe"].split(", ")
    assert https_part.startswith(f"<{settings.PUBLIC_BASE_URL}/v1/unsubscribe/")
    assert mailto_part.startswith(f"<mailto:unsubscribe@{settings.MAIL_DOMAIN}?subject=")


def test_footer_has_signature_and_postal_address(owner: Any) -> None:
    Account.objects.filter(pk=owner.account.pk).update(
        physical_address="1 Main St\nSpringfield, IL 62701"
    )
    owner.mailbox.refresh_from_db()
    owner.mailbox.signature_block = "— Ada, support agent"
    footer = footer_text(mailbox=owner.mailbox)
    assert footer.startswith("— Ada, support agent")
    assert "Acme Org" in footer
    assert "1 Main St Springfield, IL 62701" in footer


def unsubscribe_path(owner: Any, to: list[str] | None = None) -> str:
    headers = outbound_headers(email=outbound_email(owner, to))
    url = headers["List-Unsubscribe"].split(", ")[0].strip("<>")
    return urlsplit(url).path


def test_unsubscribe_page_then_confirm(owner: Any) -> None:
    path = unsubscribe_path(owner)
    client = Client(enforce_csrf_checks=True)
    page = client.get(path)
    assert page.status_code == 200
    assert b"bob@example.net" in page.content
    assert not Suppression.objects.exists()  # a GET (link preview) changes nothing
    done = client.post(path, {"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    suppression = Suppression.objects.get()
    assert suppression.account == owner.account
    assert suppression.email_address == "bob@example.net"
    assert suppression.reason == Suppression.Reason.UNSUBSCRIBE
    assert suppression.mailbox == owner.mailbox
    # Repeating is harmless.
    assert client.post(path).status_code == 200
    assert Suppression.objects.count() == 1


def test_one_click_post_without_body(owner: Any) -> None:
    path = unsubscribe_path(owner, ["a@example.net", "b@example.net"])
    assert Client(enforce_csrf_checks=True).post(path).status_code == 200
    assert set(Suppression.objects.values_list("email_address", flat=True)) == {
        "a@example.net",
        "b@example.net",
    }


def test_hard_bounce_suppression_keeps_its_reason(owner: Any) -> None:
    Suppression.objects.create(
        account=owner.account, email_address="bob@example.net", reason="hard_bounce"
    )
    Client().post(unsubscribe_path(owner))
    assert Suppression.objects.get().reason == "hard_bounce"


def test_tampered_token_is_not_found(owner: Any) -> None:
    path = unsubscribe_path(owner)
    response = Client().post(path[:-3] + "xyz")
    assert_error(response, "not_found", resource="unsubscribe_link")
    assert not Suppression.objects.exists()


@pytest.fixture
def regions(settings: Any) -> None:
    settings.REGION_HEADER = "CF-IPCountry"
    settings.REGION_SUBDIVISION_HEADER = "CF-Region-Code"
    settings.BLOCKED_REGIONS = ["CU", "IR", "KP", "SY", "UA-43", "UA-14", "UA-09"]


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_CF_IPCOUNTRY": "IR"},
        {"HTTP_CF_IPCOUNTRY": "kp"},
        {"HTTP_CF_IPCOUNTRY": "UA", "HTTP_CF_REGION_CODE": "43"},
        {"HTTP_CF_IPCOUNTRY": "UA", "HTTP_CF_REGION_CODE": "UA-14"},
    ],
)
def test_region_blocked_api(api: Any, regions: None, headers: dict[str, str]) -> None:
    assert_error(api("admin").get("/v1/webhooks", **headers), "region_blocked")


def test_region_blocked_console_page(regions: None) -> None:
    response = Client().get("/.well-known/multimail-signing-key", HTTP_CF_IPCOUNTRY="SY")
    assert response.status_code == 451
    assert b"Not available in your region" in response.content


def test_other_regions_pass(api: Any, regions: None) -> None:
    client = api("admin")
    assert client.get("/v1/webhooks", HTTP_CF_IPCOUNTRY="US").status_code == 200
    kyiv = {"HTTP_CF_IPCOUNTRY": "UA", "HTTP_CF_REGION_CODE": "30"}
    assert client.get("/v1/webhooks", **kyiv).status_code == 200
    assert client.get("/v1/webhooks").status_code == 200


def test_health_exempt(regions: None) -> None:
    assert Client().get("/health", HTTP_CF_IPCOUNTRY="IR").status_code != 451


def test_header_ignored_when_feature_off(api: Any, settings: Any) -> None:
    settings.REGION_HEADER = ""
    assert api("admin").get("/v1/webhooks", HTTP_CF_IPCOUNTRY="IR").status_code == 200


def test_mailto_unsubscribe(owner: Any) -> None:
    from urllib.parse import parse_qs, unquote

    from mailboxes.services.compliance import unsubscribe_by_mail

    headers = outbound_headers(email=outbound_email(owner))
    mailto = headers["List-Unsubscribe"].split(", ")[1].strip("<>")
    subject = parse_qs(urlsplit(mailto).query)["subject"][0]
    assert unsubscribe_by_mail(subject=f"Re: {unquote(subject)}") == ["bob@example.net"]
    assert Suppression.objects.get().reason == Suppression.Reason.UNSUBSCRIBE
    assert unsubscribe_by_mail(subject="unsubscribe forged-token") == []
    assert unsubscribe_by_mail(subject="hello") == []


def test_built_outbound_message_carries_compliance_headers_and_footer(owner: Any) -> None:
    """The outbound pipeline's MIME message: the headers survive serialisation and the
    identity header still verifies with the published key."""
    from email import message_from_bytes, policy

    from mailboxes.services.outbound.message import message_build

    Account.objects.filter(pk=owner.account.pk).update(physical_address="1 Main St, Springfield")
    owner.mailbox.ai_disclosure = True
    owner.mailbox.save(update_fields=["ai_disclosure"])
    email = outbound_email(owner)
    email.text = "Hello Bob"
    email.message_id = f"<{email.pk}@example.test>"
    email.save(update_fields=["text", "message_id"])
    email = Email.objects.select_related("mailbox__account", "account").get(pk=email.pk)
    raw = message_build(email=email, copy_operator=False).message.message().as_bytes()
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["X-AI-Generated"] == "true"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/v1/unsubscribe/" in str(parsed["List-Unsubscribe"])
    body = parsed.get_body(preferencelist=("plain",))
    assert body is not None
    assert "1 Main St, Springfield" in body.get_content()
    document = Client().get("/.well-known/multimail-signing-key").json()
    public_key = serialization.load_pem_public_key(document["public_key_pem"].encode())
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    payload, signature = str(parsed["X-MultiMail-Identity"]).split(".")
    public_key.verify(b64url(signature), payload.encode(), ec.ECDSA(hashes.SHA256()))


def test_mailto_unsubscribe_reaches_the_suppression_list(owner: Any, settings: Any) -> None:
    headers = outbound_headers(email=outbound_email(owner))
    mailto = headers["List-Unsubscribe"].split(", ")[1].strip("<>")
    address, _, query = mailto.removeprefix("mailto:").partition("?")
    subject = parse_qs(query)["subject"][0]
    assert inbound_accepts(address)  # the SMTP listener takes it at RCPT time
    raw = (
        f"From: bob@example.net\r\nTo: {address}\r\nSubject: {subject}\r\n"
        "Message-ID: <u1@example.net>\r\n\r\nunsubscribe\r\n"
    ).encode()
    assert inbound_receive(raw=raw, recipients=[address], source="smtp") == []
    suppression = Suppression.objects.get()
    assert suppression.email_address == "bob@example.net"
    assert suppression.reason == Suppression.Reason.UNSUBSCRIBE


def test_mail_to_the_unsubscribe_address_with_a_forged_token_changes_nothing(
    owner: Any, settings: Any
) -> None:
    address = f"unsubscribe@{settings.MAIL_DOMAIN}"
    raw = (
        f"From: eve@example.net\r\nTo: {address}\r\nSubject: unsubscribe forged\r\n"
        "Message-ID: <u2@example.net>\r\n\r\nx\r\n"
    ).encode()
    inbound_receive(raw=raw, recipients=[address], source="smtp")
    assert not Suppression.objects.exists()
