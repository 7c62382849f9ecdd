"""What runs when the operator approves, in the console, an admin action an agent asked
for with its API key (see accounts.approvals). Registered in AccountsConfig.ready."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts import selectors, services
from accounts.actors import Actor
from accounts.approvals import Executor


def _account_update(actor: Actor, params: dict[str, Any]) -> dict[str, Any]:
    account = services.account_update(actor=actor, changes=params)
    return selectors.account_info(account=account)


def _account_delete(actor: Actor, params: dict[str, Any]) -> dict[str, Any]:
    # After the approval itself commits: deleting the account also deletes the approval
    # record the approval step is still writing.
    transaction.on_commit(lambda: services.account_delete(actor=actor))
    return {"status": "deleted"}


def _api_key_create(actor: Actor, params: dict[str, Any]) -> dict[str, Any]:
    key, _raw = services.api_key_issue(actor=actor, name=params["name"], scopes=params["scopes"])
    # The secret is not kept anywhere (this result is stored): the key exists and can be
    # managed, but only the approval_code path hands a raw key to the agent.
    return selectors.api_key_info(key=key)


def _api_key_update(actor: Actor, params: dict[str, Any]) -> dict[str, Any]:
    key = services.api_key_update(
        actor=actor, key_id=params["key_id"], name=params.get("name"), scopes=params["scopes"]
    )
    return selectors.api_key_info(key=key)


def _api_key_revoke(actor: Actor, params: dict[str, Any]) -> dict[str, Any]:
    services.api_key_revoke(actor=actor, key_id=params["key_id"])
    return {"status": "revoked"}


EXECUTORS: dict[str, Executor] = {
    "account.update": _account_update,
    "account.delete": _account_delete,
    "api_key.create": _api_key_create,
    "api_key.update": _api_key_update,
    "api_key.revoke": _api_key_revoke,
}
