"""Create an activated account from the command line (self-hosting, scripts, CI)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.creation import account_provision
from accounts.plans import Plan
from multimail.errors import ApiError


class Command(BaseCommand):
    help = (
        "Create an activated account with one operator, a default mailbox and an API key "
        "with read, send and admin scopes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="Operator or organisation name")
        parser.add_argument("--email", required=True, help="Oversight email (the operator)")
        parser.add_argument("--plan", default=Plan.STARTER, choices=Plan.values)
        parser.add_argument("--slug", help="Tenant slug (default: derived from --name)")
        parser.add_argument("--json", action="store_true", help="Print JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = account_provision(
                name=options["name"],
                oversight_email=options["email"],
                plan=options["plan"],
                slug=options.get("slug"),
            )
        except ApiError as error:
            suggestions = error.extra.get("suggestions")
            hint = f" Try: {', '.join(suggestions)}" if suggestions else ""
            raise CommandError(f"{error.code}: {error.message}{hint}") from error
        data = {
            "account_id": result.account.pk,
            "slug": result.account.slug,
            "plan": result.account.plan,
            "oversight_email": result.account.oversight_email,
            "mailbox_id": result.mailbox.pk if result.mailbox else None,
            "mailbox_address": result.mailbox.address if result.mailbox else None,
            "api_key": result.raw_key,
            "scopes": result.api_key.scopes,
        }
        if options["json"]:
            self.stdout.write(json.dumps(data))
            return
        for label, value in data.items():
            self.stdout.write(f"{label}: {value}")
        self.stdout.write("The API key is shown only now; store it.")
