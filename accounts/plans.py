"""Plans and their limits: the one table every limit check reads.

It sits in accounts, the lowest domain app, because ``Account.plan`` takes its choices
from ``Plan`` and the API-key limit is checked here; billing (what a plan costs on Stripe,
the subscription that sets it) and mailboxes read it from below.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models

MB = 1024 * 1024


class Plan(models.TextChoices):
    STARTER = "starter", "Starter"
    BUILDER = "builder", "Builder"
    PRO = "pro", "Pro"
    SCALE = "scale", "Scale"


@dataclass(frozen=True, slots=True)
class PlanLimits:
    plan: Plan
    title: str
    monthly_price_usd: int
    annual_price_usd: int
    max_mailboxes: int
    monthly_email_quota: int
    max_storage_bytes: int
    max_webhooks: int
    max_api_keys: int
    max_domains: int

    @property
    def custom_domains(self) -> bool:
        return self.max_domains > 0


PLANS: dict[str, PlanLimits] = {
    Plan.STARTER: PlanLimits(
        Plan.STARTER,
        "Starter",
        0,
        0,
        max_mailboxes=2,
        monthly_email_quota=200,
        max_storage_bytes=100 * MB,
        max_webhooks=2,
        max_api_keys=10,
        max_domains=0,
    ),
    Plan.BUILDER: PlanLimits(
        Plan.BUILDER,
        "Builder",
        9,
        90,
        max_mailboxes=5,
        monthly_email_quota=5_000,
        max_storage_bytes=1024 * MB,
        max_webhooks=10,
        max_api_keys=25,
        max_domains=0,
    ),
    Plan.PRO: PlanLimits(
        Plan.PRO,
        "Pro",
        29,
        290,
        max_mailboxes=25,
        monthly_email_quota=25_000,
        max_storage_bytes=10 * 1024 * MB,
        max_webhooks=25,
        max_api_keys=50,
        max_domains=5,
    ),
    Plan.SCALE: PlanLimits(
        Plan.SCALE,
        "Scale",
        99,
        990,
        max_mailboxes=100,
        monthly_email_quota=100_000,
        max_storage_bytes=50 * 1024 * MB,
        max_webhooks=100,
        max_api_keys=200,
        max_domains=25,
    ),
}

PAID_PLANS = (Plan.BUILDER, Plan.PRO, Plan.SCALE)
DOMAIN_PLANS = tuple(plan for plan, limits in PLANS.items() if limits.custom_domains)


def limits_for(plan: str) -> PlanLimits:
    return PLANS[plan]
