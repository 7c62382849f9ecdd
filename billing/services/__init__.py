"""Billing writes, one module per concern.

- ``checkout``: Stripe Checkout for an account, plan changes, the portal, cancellation.
- ``pricing``: the public pricing checkout (a new account and its checkout in one step)
  and the one-time pickup of the key it bought.
- ``events``: Stripe webhooks, each event applied once.
- ``subscriptions``: the mirror of a Stripe subscription and the account plan it sets.
- ``enforcement``: what an unpaid invoice does to an account, and the hourly sweep.

Stripe is the source of truth for subscriptions; ``Subscription`` mirrors the latest state
it told us, and ``Account.plan``/``Account.period_start`` follow it.
"""
