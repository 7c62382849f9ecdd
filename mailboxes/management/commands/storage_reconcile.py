"""Recompute accounts' stored-bytes counters from their emails and attachments."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from accounts.models import Account
from mailboxes.quotas import storage_reconcile


class Command(BaseCommand):
    help = (
        "Set each account's stored-bytes counter to the exact sum of its emails and "
        "attachments, and report the ones that were off (after a restore, or rows written "
        "outside the services)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--account", action="append", dest="accounts", help="Account id (repeatable)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        account_ids = options["accounts"] or Account.objects.order_by("pk").values_list(
            "pk", flat=True
        )
        checked = corrected = 0
        # One short transaction per account: each locks only its own counter row.
        for account_id in account_ids:
            counted, actual = storage_reconcile(account_id=account_id)
            checked += 1
            if counted != actual:
                corrected += 1
                self.stdout.write(f"{account_id}: counted {counted}, stored {actual}")
        self.stdout.write(f"{checked} accounts checked, {corrected} corrected.")
