"""What an unpaid invoice does to an account: a warning on the first failed payment,
deactivation once the grace period is over (the hourly sweep), reactivation when the
invoice is paid. The sweep also clears pricing checkouts that were never paid."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.actors import Actor
from accounts.models import Account, AccountState
from accounts.principals import principal_versions_bump
from accounts.services import audit_record, operator_email_send
from billing.models import PendingSessionKey, SessionKeyStatus, Subscription

UNPAID_REASON = "unpaid"


def _unpaid_invoice_link(subscription: Subscription | None) -> str:
    if subscription is None or not subscription.unpaid_invoice_url:
        return ""
    return f"\n\nPay the invoice here, no sign-in needed: {subscription.unpaid_invoice_url}"


def payment_failure_notify(*, subscription: Subscription) -> None:
    """The first failed payment of a subscription: tell the operator the deadline before
    the sweep deactivates the account."""
    deadline = subscription.past_due_since + timedelta(  # type: ignore[operator]
        days=settings.BILLING_UNPAID_GRACE_DAYS
    )
    operator_email_send(
        account=subscription.account,
        subject="Payment failed",
        text=(
            "The last payment for your MultiMail subscription failed. Update the payment "
            "method in the billing portal (console, Billing) before "
            f"{deadline:%Y-%m-%d %H:%M} UTC, or the account will be deactivated until "
            "the invoice is paid." + _unpaid_invoice_link(subscription)
        ),
    )


def account_reactivate_paid(*, account_id: str) -> None:
    """The invoice was paid: an account deactivated for not paying is active again (a
    compare-and-set, so a redelivered event reactivates and notifies once)."""
    reactivated = Account.objects.filter(
        pk=account_id, state=AccountState.DEACTIVATED, deactivated_reason=UNPAID_REASON
    ).update(state=AccountState.ACTIVE, deactivated_reason="")
    if not reactivated:
        return
    principal_versions_bump([account_id])
    account = Account.objects.get(pk=account_id)
    audit_record(
        actor=Actor.system(account, "stripe"),
        action="account.reactivated",
        resource_type="account",
        resource_id=account.pk,
        metadata={"reason": "invoice paid"},
    )
    operator_email_send(
        account=account,
        subject="Account reactivated",
        text="The invoice was paid and your MultiMail account is active again.",
    )


def unpaid_accounts_enforce(*, now: datetime | None = None) -> int:
    """Deactivate accounts whose invoice stayed unpaid past the grace period, delete
    pricing-checkout accounts whose checkout expired unpaid (freeing their slugs), and drop
    session keys nobody picked up. Returns how many accounts were deactivated."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.BILLING_UNPAID_GRACE_DAYS)
    account_ids = list(
        Subscription.objects.filter(
            past_due_since__lte=cutoff, account__state=AccountState.ACTIVE
        ).values_list("account_id", flat=True)
    )
    deactivated = sum(account_deactivate_unpaid(account_id=pk) for pk in account_ids)
    expired = PendingSessionKey.objects.filter(expires_at__lte=now)
    abandoned = list(
        expired.filter(status=SessionKeyStatus.PAYMENT_PENDING).values_list("account_id", flat=True)
    )
    Account.objects.filter(pk__in=abandoned, state=AccountState.PENDING).delete()
    principal_versions_bump(abandoned)
    expired.delete()
    return deactivated


@transaction.atomic
def account_deactivate_unpaid(*, account_id: str) -> bool:
    changed = Account.objects.filter(pk=account_id, state=AccountState.ACTIVE).update(
        state=AccountState.DEACTIVATED, deactivated_reason=UNPAID_REASON
    )
    if not changed:
        return False
    principal_versions_bump([account_id])
    account = Account.objects.get(pk=account_id)
    audit_record(
        actor=Actor.system(account, "billing"),
        action="account.deactivated",
        resource_type="account",
        resource_id=account.pk,
        metadata={"reason": UNPAID_REASON},
    )
    operator_email_send(
        account=account,
        subject="Account deactivated: unpaid invoice",
        text=(
            f"The MultiMail subscription's invoice stayed unpaid for more than "
            f"{settings.BILLING_UNPAID_GRACE_DAYS} days, so the account is deactivated: its "
            "API keys are refused and its operators cannot sign in. Once the invoice is paid "
            "the account is reactivated automatically."
            + (
                _unpaid_invoice_link(Subscription.objects.filter(account=account).first())
                or " Contact support to pay it."
            )
        ),
    )
    return True
