"""Who is acting: an agent's API key, an operator in the console, a hosted link, support."""

from __future__ import annotations

from dataclasses import dataclass

from accounts.models import Account, ActorKind, ApiKey, Operator


@dataclass(frozen=True, slots=True)
class Actor:
    kind: ActorKind
    account: Account
    api_key: ApiKey | None = None
    operator: Operator | None = None
    label: str = ""

    @property
    def is_operator(self) -> bool:
        """Operators and support staff act with a human's authority: no approval code."""
        return self.kind in (
            ActorKind.OPERATOR,
            ActorKind.SUPPORT,
            ActorKind.SYSTEM,
            ActorKind.HOSTED_LINK,
        )

    @property
    def display(self) -> str:
        if self.api_key is not None:
            return f"key:{self.api_key.prefix}"
        if self.operator is not None:
            return f"operator:{self.operator.email}"
        return f"{self.kind}:{self.label}" if self.label else str(self.kind)

    @classmethod
    def for_key(cls, api_key: ApiKey) -> Actor:
        return cls(
            kind=ActorKind.API_KEY, account=api_key.account, api_key=api_key, label=api_key.prefix
        )

    @classmethod
    def for_operator(cls, operator: Operator) -> Actor:
        return cls(
            kind=ActorKind.OPERATOR,
            account=operator.account,
            operator=operator,
            label=operator.email,
        )

    @classmethod
    def system(cls, account: Account, label: str = "system") -> Actor:
        return cls(kind=ActorKind.SYSTEM, account=account, label=label)

    @classmethod
    def support(cls, account: Account, staff_username: str) -> Actor:
        return cls(kind=ActorKind.SUPPORT, account=account, label=staff_username)

    @classmethod
    def hosted_link(cls, account: Account, label: str = "hosted approval link") -> Actor:
        return cls(kind=ActorKind.HOSTED_LINK, account=account, label=label)
