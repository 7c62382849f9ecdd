"""The operator is a human outside the agents' reach: no oversight address on a hosted domain.

An address on the server's mail domain, on any tenant's subdomain, or on a custom domain a
tenant verified (or has mailboxes on) is a mailbox an agent may read. It is refused as the
oversight email at signup, at the pricing checkout, by account PATCH, by operator invites
and by a support edit in Django admin; nothing is stored and nobody is emailed. A domain a
tenant only added, unverified and without mailboxes, is not hosted (else any tenant could
block a public provider's users by adding its domain).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from accounts.actors import Actor
from accounts.email_change import account_change
from accounts.models import Account, AdminActionRequest, Operator, OversightEmailChange
from accounts.services import operator_invite
from mailboxes.models import Domain, Mailbox
from multimail.errors import ApiError
from tests.conftest import Tenant, assert_error
from tests.console.conftest import signed_in

pytestmark = pytest.mark.django_db

checked = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

VERIFIED = "mail.globex.example"
UNVERIFIED_WITH_MAILBOX = "old.globex.example"
UNVERIFIED = "claimed.example"


@pytest.fixture
def hosting(owner: Tenant, other: Tenant) -> Tenant:
    """``other`` hosts mail on its subdomain, a verified custom domain, and a custom domain
    that is pending again but still has a mailbox; it also only added one more domain."""
    verified = Domain.objects.create(
        account=other.account, domain=VERIFIED, status=Domain.Status.ACTIVE
    )
    lapsed = Domain.objects.create(account=other.account, domain=UNVERIFIED_WITH_MAILBOX)
    Domain.objects.create(account=other.account, domain=UNVERIFIED)
    Mailbox.objects.create(account=other.account, address=f"sales@{VERIFIED}", domain=verified)
    Mailbox.objects.create(
        account=other.account, address=f"old@{UNVERIFIED_WITH_MAILBOX}", domain=lapsed
    )
    mail.outbox.clear()
    return owner


def _case(text: str, upper: list[bool]) -> str:
    """``text`` with the letters ``upper`` marks in upper case (the rest as they are)."""
    marks = upper + [False] * len(text)
    return "".join(c.upper() if up else c for c, up in zip(text, marks, strict=False))


_local = st.from_regex(r"[a-z][a-z0-9.]{0,10}[a-z0-9]", fullmatch=True).filter(
    lambda local: ".." not in local
)
_domain = st.sampled_from(
    [
        "multimail.localhost",  # the server's mail domain itself
        "globex.multimail.localhost",  # another tenant's subdomain
        "acme.multimail.localhost",  # the account's own subdomain
        "anything.multimail.localhost",  # a subdomain no tenant holds yet
        VERIFIED,
        UNVERIFIED_WITH_MAILBOX,
    ]
)
hosted_address = st.tuples(_local, _domain, st.lists(st.booleans(), max_size=40)).map(
    lambda parts: f"{parts[0]}@{_case(parts[1], parts[2])}"
)


def _refused(response: Any, param: str = "oversight_email") -> None:
    error = assert_error(response, "validation_error", param=param)
    assert "hosts mailboxes" in error["message"]


FAKE_POW = {"algorithm": "SHA-256", "challenge": "c", "number": 1, "salt": "s", "signature": "x"}
SIGNUP = {
    "operator_name": "Initech Labs",
    "accepted_tos": True,
    "accepted_operator_agreement": True,
    "accepted_anti_spam_policy": True,
    "email_use_type": "transactional",
    # Never checked: the address is refused before the proof of work is looked at.
    "pow_solution": FAKE_POW,
}
PRICING = {
    "operator_name": "Initech Ops",
    "plan": "builder",
    "accepted_tos": True,
    "accepted_operator_agreement": True,
    "accepted_anti_spam_policy": True,
}


@checked
@given(address=hosted_address)
def test_signup_refuses_a_hosted_oversight_address(hosting: Tenant, address: str) -> None:
    response = APIClient().post(
        "/v1/account", {**SIGNUP, "oversight_email": address}, format="json"
    )
    _refused(response)
    assert Account.objects.count() == 2
    assert not mail.outbox


@checked
@given(address=hosted_address)
def test_pricing_checkout_refuses_a_hosted_oversight_address(hosting: Tenant, address: str) -> None:
    response = APIClient().post(
        "/v1/billing/pricing-checkout", {**PRICING, "oversight_email": address}, format="json"
    )
    _refused(response)
    assert Account.objects.count() == 2


@checked
@given(address=hosted_address)
def test_account_patch_refuses_a_hosted_oversight_address(
    hosting: Tenant, api: Any, address: str
) -> None:
    hosting.account.require_operator_approval = True
    hosting.account.save()
    response = api("admin").patch("/v1/account", {"oversight_email": address}, format="json")
    _refused(response)
    assert Account.objects.get(pk=hosting.account.pk).oversight_email == "ops@acme.example"
    assert not AdminActionRequest.objects.exists()  # the operator was not asked
    assert not mail.outbox


@checked
@given(address=hosted_address)
def test_operator_invite_refuses_a_hosted_address(hosting: Tenant, address: str) -> None:
    console = signed_in(hosting)
    page = console.post("/console/operators", {"email": address}, follow=True)
    assert "hosts mailboxes" in page.content.decode()
    assert list(Operator.objects.filter(account=hosting.account)) == [hosting.operator]
    assert not mail.outbox


def test_the_services_refuse_it_too(hosting: Tenant) -> None:
    """Every caller, not only the HTTP edges: the account service and the invite service."""
    actor = Actor.for_operator(hosting.operator)
    with pytest.raises(ApiError) as refused:
        account_change(actor=actor, changes={"oversight_email": f"x@{VERIFIED}"})
    assert (refused.value.code, refused.value.param) == ("validation_error", "oversight_email")
    with pytest.raises(ApiError) as refused:
        operator_invite(actor=actor, email="boss@globex.multimail.localhost")
    assert (refused.value.code, refused.value.param) == ("validation_error", "email")


@pytest.fixture
def staff() -> Client:
    user = get_user_model().objects.create_superuser(username="sam", email="sam@support.example")
    client = Client()
    client.force_login(user)
    return client


def _admin_edit(staff: Client, tenant: Tenant, oversight_email: str) -> Any:
    return staff.post(
        reverse("admin:accounts_account_change", args=[tenant.account.pk]),
        {
            "name": tenant.account.name,
            "oversight_email": oversight_email,
            "physical_address": "",
            "operators-TOTAL_FORMS": "1",
            "operators-INITIAL_FORMS": "1",
            "operators-MIN_NUM_FORMS": "0",
            "operators-MAX_NUM_FORMS": "1000",
            "operators-0-id": tenant.operator.pk,
            "operators-0-account": tenant.account.pk,
            "oversight_email_changes-TOTAL_FORMS": "0",
            "oversight_email_changes-INITIAL_FORMS": "0",
            "oversight_email_changes-MIN_NUM_FORMS": "0",
            "oversight_email_changes-MAX_NUM_FORMS": "1000",
        },
    )


@pytest.mark.parametrize(
    "address", [f"boss@{VERIFIED}", "boss@globex.multimail.localhost", "Boss@MultiMail.Localhost"]
)
def test_a_support_edit_in_django_admin_refuses_it(
    hosting: Tenant, staff: Client, address: str
) -> None:
    response = _admin_edit(staff, hosting, address)
    assert response.status_code == 200  # the form again, with the error
    assert "hosts mailboxes" in response.content.decode()
    assert Account.objects.get(pk=hosting.account.pk).oversight_email == "ops@acme.example"
    assert not mail.outbox


def test_a_domain_only_claimed_is_not_hosted(hosting: Tenant, staff: Client, api: Any) -> None:
    """An unverified custom domain without mailboxes receives nothing here: accepted."""
    assert _admin_edit(staff, hosting, f"boss@{UNVERIFIED}").status_code == 302
    # Accepted as a request: the address confirms before it becomes the oversight email.
    assert OversightEmailChange.objects.get(account=hosting.account).new_email == (
        f"boss@{UNVERIFIED}"
    )
    response = api("admin").patch(
        "/v1/account", {"oversight_email": "ops@elsewhere.example"}, format="json"
    )
    assert response.status_code == 200, response.content
