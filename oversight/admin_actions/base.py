"""The shapes of the admin-action table: typed parameters, an action, a pending outcome."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self

from accounts.actors import Actor


@dataclass(frozen=True)
class ActionParams:
    """What an action is asked to do. Its JSON is what a pending request stores and what the
    approval code is bound to (``digest``); an approval in the console reads it back."""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(**data)


def _unchecked[P: ActionParams](actor: Actor, params: P) -> P:
    return params


def _always(actor: Actor, params: ActionParams) -> bool:
    return True


@dataclass(frozen=True)
class AdminAction[P: ActionParams, R]:
    name: str
    params_type: type[P]
    # The operator reads this in the email ("Approve: <summary>").
    summary: Callable[[Actor, P], str]
    # (actor, params, request_id) -> what the view renders.
    execute: Callable[[Actor, P, str], R]
    # What a console approval keeps of the result (JSON; never a secret).
    record: Callable[[R], dict[str, Any]]
    # Every refusal the action can give, before anyone is asked; returns the params
    # normalised (what is stored and bound to the code).
    check: Callable[[Actor, P], P] = _unchecked
    # Whether this call needs the operator at all (some changes are harmless).
    needs_operator: Callable[[Actor, P], bool] = _always
    # Asks the operator even when the account turned approvals off: the change gives an
    # agent more autonomy (looser rules, resuming after the operator's stop), which, like a
    # mode upgrade, only the operator grants.
    even_without_approvals: bool = False


@dataclass(frozen=True)
class PendingApproval:
    """The action waits for the operator; the view answers 202 with ``body``."""

    approval_id: str

    @property
    def body(self) -> dict[str, str]:
        return {
            "status": "pending_approval",
            "approval_id": self.approval_id,
            "message": "An approval code was emailed to the operator. Repeat this call with "
            "approval_code to complete it.",
        }
