"""Per-page widenings of the site's Content-Security-Policy (settings.SECURE_CSP)."""

from __future__ import annotations

from typing import cast

from django.conf import settings


def _widened(**directives: list[str]) -> dict[str, list[str]]:
    base = cast(dict[str, list[str]], settings.SECURE_CSP)
    policy = {name: list(values) for name, values in base.items()}
    for name, extra in directives.items():
        policy[name.replace("_", "-")] = [*policy.get(name.replace("_", "-"), []), *extra]
    return policy


# Remote images stay placeholders until the operator asks for them (rendering.py); then
# the page must be allowed to load them.
EMAIL_PAGE_CSP = _widened(img_src=["https:", "http:"])
# The plan and portal buttons post to the console and are redirected to Stripe; browsers
# apply the page's form-action to that redirect, so Stripe's hosted pages must be allowed.
BILLING_PAGE_CSP = _widened(
    form_action=["https://checkout.stripe.com", "https://billing.stripe.com"]
)
