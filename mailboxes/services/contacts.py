"""The account's address book: contacts the agent saves and searches."""

from __future__ import annotations

from django.db import transaction

from accounts.actors import Actor
from accounts.models import Account
from accounts.services import audit_record
from mailboxes.models import Contact
from multimail.errors import not_found


def contact_create(*, account: Account, name: str, email: str, tags: list[str]) -> Contact:
    # Tags are a set: order kept, repeats dropped.
    return Contact.objects.create(
        account=account, name=name, email=email.strip(), tags=list(dict.fromkeys(tags))
    )


@transaction.atomic
def contact_delete(*, actor: Actor, contact_id: str, request_id: str = "") -> bool:
    deleted, _ = Contact.objects.filter(account=actor.account, pk=contact_id).delete()
    if not deleted:
        raise not_found("contact")
    audit_record(
        actor=actor,
        action="contact.deleted",
        resource_type="contact",
        resource_id=contact_id,
        request_id=request_id,
    )
    return True
