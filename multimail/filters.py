"""Applying a django-filter FilterSet with the API's error contract.

Each list's FilterSet is its one filter definition: the selector applies it for the API
and the console alike, and the schema documents its parameters (multimail.openapi).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django_filters import FilterSet

from multimail.errors import ApiError


def filtered(filterset: FilterSet) -> QuerySet[Any]:
    """The filtered queryset, or ``invalid_parameter`` naming the first bad parameter (in
    the FilterSet's declaration order) with its field's message."""
    if not filterset.is_valid():
        param, messages = next(iter(filterset.errors.items()))
        raise ApiError("invalid_parameter", messages[0], param=param)
    return filterset.qs
