"""Demo data for `make run`: one activated account, its operator and mailbox, and a key.

Safe to run on every start: the account is created once, and the key too. Keys are stored
hashed, so the raw demo key is kept in DEMO_CREDENTIALS_FILE (var/demo.env) and printed
again on each run; only when that file is gone (or its key no longer works) are the old
demo keys revoked and a new one written there.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.actors import Actor
from accounts.creation import FIRST_KEY_SCOPES, account_provision
from accounts.demo import demo_credentials_read, demo_credentials_write, demo_key_works
from accounts.models import Account, ApiKey
from accounts.services import api_key_issue, api_key_revoke

DEMO_SLUG = "demo"
DEMO_OPERATOR_EMAIL = "operator@demo.example"
DEMO_KEY_NAME = "Demo key"


class Command(BaseCommand):
    help = "Create (once) the demo account and its key, and print the console URL, login and key."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        path = settings.DEMO_CREDENTIALS_FILE
        account = Account.objects.filter(slug=DEMO_SLUG).first()
        stored = demo_credentials_read(path).get("MULTIMAIL_API_KEY", "")
        if account is not None and demo_key_works(account=account, raw_key=stored):
            raw = stored
        elif account is None:
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
        demo_credentials_write(
            path,
            {
                "MULTIMAIL_API_KEY": raw,
                "MULTIMAIL_MAILBOX_ID": mailbox.pk if mailbox else "",
                "MULTIMAIL_MAILBOX": mailbox.address if mailbox else "",
                "MULTIMAIL_OPERATOR": DEMO_OPERATOR_EMAIL,
            },
        )
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
                    f"  Mailbox id:     {mailbox.pk if mailbox else '-'}",
                    f"  API key:        {raw}",
                    f"  Saved in:       {path} (delete it for a new key)",
                    f"  Try:            curl -H 'Authorization: Bearer {raw}' "
                    f"{settings.PUBLIC_BASE_URL}/v1/account",
                ]
            )
        )
