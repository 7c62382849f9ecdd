"""Demo data for `make run`: one activated account, its operator and mailbox, and a key.

Safe to run on every start: the account is created once; each run revokes the previous
demo key and prints a fresh one (keys are stored hashed, so an old one cannot be shown).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.actors import Actor
from accounts.creation import FIRST_KEY_SCOPES, account_provision
from accounts.models import Account, ApiKey
from accounts.services import api_key_issue, api_key_revoke

DEMO_SLUG = "demo"
DEMO_OPERATOR_EMAIL = "operator@demo.example"
DEMO_KEY_NAME = "Demo key"


class Command(BaseCommand):
    help = "Create (once) the demo account and print the console URL, login and a fresh key."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        account = Account.objects.filter(slug=DEMO_SLUG).first()
        if account is None:
            result = account_provision(
                name="Demo",
                oversight_email=DEMO_OPERATOR_EMAIL,
                slug=DEMO_SLUG,
                key_name=DEMO_KEY_NAME,
            )
            raw = result.raw_key
        else:
            actor = Actor.system(account, "seed_demo")
            for key in ApiKey.objects.filter(account=account, name=DEMO_KEY_NAME, is_active=True):
                api_key_revoke(actor=actor, key_id=key.pk)
            _, raw = api_key_issue(actor=actor, name=DEMO_KEY_NAME, scopes=list(FIRST_KEY_SCOPES))
        mailbox = Account.objects.get(slug=DEMO_SLUG).mailboxes.order_by("id").first()
        where_codes_go = (
            f" (sign-in codes are written to {settings.MULTIMAIL_OUTBOX_DIR})"
            if settings.MULTIMAIL_MAIL_BACKEND == "local"
            else ""
        )
        self.stdout.write(
            "\n".join(
                [
                    "MultiMail demo",
                    f"  Console:        {settings.PUBLIC_BASE_URL}/console/",
                    f"  Operator login: {DEMO_OPERATOR_EMAIL}{where_codes_go}",
                    f"  Mailbox:        {mailbox.address if mailbox else '-'}",
                    f"  API key:        {raw}",
                    f"  Try:            curl -H 'Authorization: Bearer {raw}' "
                    f"{settings.PUBLIC_BASE_URL}/v1/account",
                ]
            )
        )
