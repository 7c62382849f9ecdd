"""``QueueFilter``: how the operator narrows the pending queue (the console's review screen).

Applied by ``oversight.selectors`` through ``multimail.filters.filtered``, so a bad value is
``invalid_parameter`` naming the parameter, like every other list filter.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone
from django_filters import CharFilter, ChoiceFilter, FilterSet, ModelChoiceFilter

from accounts.models import Account
from mailboxes.filters import StrippedChoiceFilter
from mailboxes.models import Direction, Email, Mailbox

# "Older than" choices: how long an email has been waiting for the operator.
AGES = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "72h": timedelta(hours=72)}
AGE_LABELS = [
    ("1h", "Older than 1 hour"),
    ("24h", "Older than 24 hours"),
    ("72h", "Older than 3 days"),
]


class QueueFilter(FilterSet):
    # Declaration order is the order of the console's inputs and of error reporting.
    mailbox = ModelChoiceFilter(
        queryset=Mailbox.objects.none(),
        label="Mailbox",
        empty_label="All mailboxes",
        error_messages={"invalid_choice": "mailbox must be the id of one of your mailboxes."},
    )
    direction = StrippedChoiceFilter(
        label="Direction",
        choices=[
            (Direction.OUTBOUND, "Outbound (the agent sends)"),
            (Direction.INBOUND, "Inbound (held from the agent)"),
        ],
        empty_label="Both",
        error_messages={"invalid_choice": 'direction must be "inbound" or "outbound".'},
    )
    recipient = CharFilter(
        label="Recipient or @domain",
        method="filter_recipient",
        max_length=320,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "name@… or @domain"}),
        error_messages={"max_length": "recipient must be an address or @domain."},
    )
    age = ChoiceFilter(
        label="Waiting",
        choices=AGE_LABELS,
        empty_label="Any time",
        method="filter_age",
        error_messages={"invalid_choice": f"age must be one of: {', '.join(AGES)}."},
    )

    class Meta:
        model = Email
        fields: list[str] = []

    def __init__(self, data: Any = None, *, account: Account, **kwargs: Any) -> None:
        super().__init__(data, **kwargs)
        # Only the account's own mailboxes can be chosen: another tenant's id is refused.
        self.filters["mailbox"].queryset = Mailbox.objects.filter(account=account).order_by(
            "address"
        )

    def filter_recipient(self, queryset: QuerySet[Email], name: str, value: str) -> QuerySet[Email]:
        # The address lists are JSON arrays of strings, matched on their text: '@acme.com"'
        # ends an address of exactly that domain, '"ann@acme.com"' is exactly that address,
        # anything else matches part of an address.
        value = value.strip().replace('"', "").replace("\\", "")
        if not value:
            return queryset
        if value.startswith("@"):
            pattern = f'{value}"'
        elif "@" in value:
            pattern = f'"{value}"'
        else:
            pattern = value
        return queryset.filter(
            Q(to__icontains=pattern) | Q(cc__icontains=pattern) | Q(bcc__icontains=pattern)
        )

    def filter_age(self, queryset: QuerySet[Email], name: str, value: str) -> QuerySet[Email]:
        return queryset.filter(status_changed_at__lte=timezone.now() - AGES[value])
