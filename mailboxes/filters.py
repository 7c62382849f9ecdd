"""``EmailFilter``: the ONE definition of how email lists are filtered.

``GET /v1/mailboxes/{id}/emails`` applies it in its selector and documents its query
parameters from it; the console's mailbox page applies the same selector and renders the
FilterSet's form. A filter therefore means the same thing everywhere. A bad value is
``invalid_parameter`` naming the parameter (multimail.filters.filtered).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django_filters import CharFilter, ChoiceFilter, Filter, FilterSet
from django_filters.fields import ChoiceField
from drf_spectacular.utils import extend_schema_field

from mailboxes import search
from mailboxes.models import Direction, Email, EmailStatus
from mailboxes.search import SearchQuery

INSTANT_EXPECTED = "must be an ISO 8601 date or date-time, e.g. 2026-01-31T09:00:00Z."


def parse_instant(value: str) -> datetime | None:
    """ISO 8601 date or date-time (naive means UTC), or epoch milliseconds; None if neither."""
    value = value.strip()
    parsed: datetime | None
    try:
        if value.isdigit():
            parsed = datetime.fromtimestamp(int(value) / 1000, tz=UTC)
        else:
            parsed = parse_datetime(value)
            if parsed is None:
                day = parse_date(value)
                parsed = datetime(day.year, day.month, day.day) if day else None
    except (ValueError, OverflowError, OSError):  # out-of-range dates and epochs
        parsed = None
    if parsed is None:
        return None
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)


class _InstantField(forms.Field):
    def to_python(self, value: Any) -> datetime | None:
        if value in self.empty_values:
            return None
        parsed = parse_instant(str(value))
        if parsed is None:
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return parsed


# On the wire a plain string: dates, date-times and epoch milliseconds are all taken.
@extend_schema_field(
    {"type": "string", "description": "ISO 8601 date or date-time (UTC if no offset)"}
)
class InstantFilter(Filter):
    field_class = _InstantField


class _SearchTextField(forms.CharField):
    """Search text longer than the column is cut to the column's length, not refused."""

    def to_python(self, value: Any) -> str:
        text = super().to_python(value) or ""
        return text[: self.max_length] if self.max_length else text


class SearchFilter(CharFilter):
    field_class = _SearchTextField


class _SearchQueryField(forms.Field):
    """The ``q`` text parsed (mailboxes.search); a missing or empty q means no search."""

    def to_python(self, value: Any) -> SearchQuery | None:
        if value in self.empty_values:
            return None
        try:
            return search.parse(str(value))
        except search.QueryError as refused:
            raise ValidationError(str(refused), code="invalid") from refused


@extend_schema_field(
    {
        "type": "string",
        "maxLength": search.MAX_QUERY_LENGTH,
        "description": 'Full-text search: words, "phrases", -excluded, from:, to:. '
        "Results come best match first.",
    }
)
class SearchQueryFilter(Filter):
    field_class = _SearchQueryField


class _StrippedChoiceField(ChoiceField):
    def to_python(self, value: Any) -> str:
        return str(super().to_python(value)).strip()


class StrippedChoiceFilter(ChoiceFilter):
    field_class = _StrippedChoiceField


class _LowercaseChoiceField(ChoiceField):
    """A choice in any case, spaces around it allowed; only a missing value means "any"."""

    def to_python(self, value: Any) -> str:
        if value in self.empty_values:
            return ""
        normalized = str(value).strip().lower()
        if not normalized:
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return normalized


class LowercaseChoiceFilter(ChoiceFilter):
    field_class = _LowercaseChoiceField


class _EmailStatusesField(ChoiceField):
    """One status or a comma-separated list of them (the console's links use lists)."""

    def to_python(self, value: Any) -> tuple[str, ...]:
        return tuple(part.strip() for part in str(value or "").split(",") if part.strip())

    def validate(self, value: Any) -> None:
        unknown = [status for status in value if status not in EmailStatus.values]
        if unknown:
            raise ValidationError(
                f"Unknown status {unknown[0]!r}. Use one of: {', '.join(EmailStatus.values)}.",
                code="invalid_choice",
            )


class EmailStatusesFilter(ChoiceFilter):
    field_class = _EmailStatusesField


class EmailFilter(FilterSet):
    # Declaration order is the order of the console's inputs and the order in which bad
    # values are reported (the first one wins).
    status = EmailStatusesFilter(
        field_name="status",
        lookup_expr="in",
        label="Status",
        choices=EmailStatus.choices,
        empty_label="Any",
    )
    direction = StrippedChoiceFilter(
        label="Direction",
        choices=Direction.choices,
        empty_label="Both",
        error_messages={"invalid_choice": 'direction must be "inbound" or "outbound".'},
    )
    # Not an input of the console (a hidden field is not rendered there); ids are
    # time-ordered, so "newer than this email" is a plain comparison.
    since_id = CharFilter(
        field_name="id",
        lookup_expr="gt",
        label="Only emails newer than this id",
        max_length=64,
        widget=forms.HiddenInput,
        error_messages={"max_length": "since_id must be an email id from a previous response."},
    )
    sender = SearchFilter(
        field_name="from_address", lookup_expr="icontains", label="Sender contains", max_length=320
    )
    subject_contains = SearchFilter(
        field_name="subject", lookup_expr="icontains", label="Subject contains", max_length=998
    )
    date_after = InstantFilter(
        field_name="received_at",
        lookup_expr="gt",
        label="Received after",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": f"date_after {INSTANT_EXPECTED}"},
    )
    date_before = InstantFilter(
        field_name="received_at",
        lookup_expr="lt",
        label="Received before",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": f"date_before {INSTANT_EXPECTED}"},
    )
    has_attachments = LowercaseChoiceFilter(
        label="Attachments",
        choices=[("true", "With attachments"), ("false", "Without")],
        empty_label="Any",
        method="filter_has_attachments",
        error_messages={"invalid_choice": 'has_attachments must be "true" or "false".'},
    )

    # Last: its matching and ranking run on the rows the other filters leave.
    q = SearchQueryFilter(label="Search", method="filter_q")

    class Meta:
        model = Email
        fields: list[str] = []

    def filter_has_attachments(
        self, queryset: QuerySet[Email], name: str, value: str
    ) -> QuerySet[Email]:
        # The wire value is the string "true" or "false" (the schema's type comes from
        # this annotation).
        return queryset.filter(has_attachments=value == "true")

    def filter_q(self, queryset: QuerySet[Email], name: str, value: SearchQuery) -> QuerySet[Email]:
        return search.matching(queryset, value)
