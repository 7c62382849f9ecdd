"""Writes that go with reading mail: marking read, tags, cancel, attachment links."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from mailboxes import lifecycle
from mailboxes.models import Attachment, Email, EmailStatus, Mailbox
from multimail.errors import ApiError, not_found
from oversight.policy import agent_can_read_content

ATTACHMENT_URL_TTL_SECONDS = 3600
_ATTACHMENT_SALT = "mailboxes.attachment-url"


def email_mark_read(*, email: Email) -> Email:
    """Reading an unread email marks it read. A compare-and-set, so two concurrent reads
    (or a read racing an archive) never overwrite a newer status."""
    if email.status != EmailStatus.UNREAD:
        return email
    now = timezone.now()
    if not lifecycle.email_move(email, to=EmailStatus.READ, at=now, read_at=now):
        email.refresh_from_db(fields=["status", "read_at", "status_changed_at"])
    return email


def email_tags_replace(*, email: Email, tags: dict[str, str]) -> dict[str, str]:
    """PUT semantics: the map sent becomes the whole map (one UPDATE, so it is atomic)."""
    Email.objects.filter(pk=email.pk).update(tags=tags)
    email.tags = tags
    return tags


@transaction.atomic
def email_tag_delete(*, email: Email, key: str) -> bool:
    # Locked read-modify-write: a concurrent PUT or DELETE cannot be lost.
    locked = Email.objects.select_for_update().only("id", "tags").get(pk=email.pk)
    if key not in locked.tags:
        return False
    tags = dict(locked.tags)
    del tags[key]
    Email.objects.filter(pk=email.pk).update(tags=tags)
    return True


@transaction.atomic
def email_cancel(*, mailbox: Mailbox, email_id: str) -> Email:
    """Cancel mail that has not left or been decided yet; cancelling twice is a no-op.

    The compare-and-set means an email the pipeline just moved to ``sending`` (or the
    operator just approved) is not cancelled behind its back: the loser gets
    ``not_cancellable`` with the status that won.
    """
    updated = lifecycle.email_cancel(mailbox=mailbox, email_id=email_id)
    email = Email.objects.filter(mailbox=mailbox, pk=email_id).only("id", "status").first()
    if email is None:
        raise not_found("email")
    if updated or email.status == EmailStatus.CANCELLED:
        return email
    raise ApiError(
        "not_cancellable",
        f"This email is {email.status}; only emails in pending_scan, scheduled, "
        "pending_send_approval or pending_inbound_approval can be cancelled.",
        status=email.status,
    )


@dataclass(frozen=True, slots=True)
class AttachmentLink:
    url: str
    expires_in: int


def attachment_link(*, attachment: Attachment) -> AttachmentLink:
    """A URL that serves the bytes without an API key for one hour (signed, not stored)."""
    token = signing.dumps(attachment.pk, salt=_ATTACHMENT_SALT, compress=True)
    path = reverse("attachment-download", kwargs={"token": token})
    return AttachmentLink(
        url=f"{settings.PUBLIC_BASE_URL}{path}", expires_in=ATTACHMENT_URL_TTL_SECONDS
    )


def attachment_from_link(*, token: str) -> Attachment:
    """The attachment a link points to, while the link is fresh and the content readable."""
    try:
        attachment_id = signing.loads(
            token, salt=_ATTACHMENT_SALT, max_age=ATTACHMENT_URL_TTL_SECONDS
        )
    except signing.BadSignature:  # includes SignatureExpired
        raise not_found(
            "attachment",
            "This attachment link is invalid or expired (links last one hour). Ask the API "
            "for a new one with GET .../attachments/{filename}/url.",
        ) from None
    attachment = Attachment.objects.select_related("email").filter(pk=str(attachment_id)).first()
    # Content hidden since the link was issued (e.g. the operator rejected it) stays hidden.
    if attachment is None or not agent_can_read_content(attachment.email):
        raise not_found("attachment")
    return attachment
