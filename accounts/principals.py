"""The version of each account's API principals, shared by every process through the cache.

API-key authentication remembers the principal it resolved (the key and its account) per
process, so an authenticated request does not look the key up in the database
(multimail.authentication). What it remembers is only used while the account's version
here is the one it saw when it loaded it. Every service that writes an account or one of
its keys calls ``principal_versions_bump`` next to the write, in its transaction, and the
version is replaced once the write has committed, so a revoked key, new scopes or a
deactivated account are seen by every process on its very next request.

The call is explicit, not a save()/delete() hook of the models (business rules live in
services): tests/core/test_principal_writers.py reads the code and fails on a function that
writes account or key rows without it. Only a key's last use is written without it: the
request that refreshes it updates the principal it keeps. A write made around the services
(a shell, SQL) is seen once the remembered principals expire (API_PRINCIPAL_CACHE_SECONDS),
or at once after ``principal_versions_bump([account_id])``.

A version is a new unique token each time, never a counter: a counter whose key expired
and was created again could come back to a value a process still remembers.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.cache import cache
from django.db import transaction

from multimail.ids import new_id

# Longer than a process remembers a principal (API_PRINCIPAL_CACHE_SECONDS): a version that
# expired reads as None, which differs from the token a remembered principal holds.
VERSION_TTL_SECONDS = 24 * 3600


def principal_version_key(account_id: str) -> str:
    return f"auth:principals:{account_id}"


def principal_versions_bump(account_ids: Iterable[str]) -> None:
    """Replace the versions of these accounts once the current transaction commits: before
    the commit, a process reloading the principal would read the old rows and remember
    them under the new version."""
    keys = {principal_version_key(account_id) for account_id in account_ids}
    if keys:
        transaction.on_commit(
            lambda: cache.set_many(dict.fromkeys(keys, new_id()), VERSION_TTL_SECONDS)
        )
