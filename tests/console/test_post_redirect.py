"""POST/redirect/GET and confirmation of destructive actions in the console.

A full-page POST always answers a redirect, so reloading the page never repeats it; a
destructive action is done only by a POST carrying the confirmation page's field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import ApiKey
from console.urls import urlpatterns
from mailboxes.models import Domain, Suppression, WebhookSubscription
from tests.conftest import Tenant
from tests.console.conftest import signed_in

SECRET = re.compile(r'id="new-key">(mm_live_[^<]+)<')


def test_reloading_after_creating_a_key_creates_no_second_key(owner, console):
    created = console.post("/console/keys", {"name": "reload-me", "scopes": ["read"]}, follow=True)
    assert created.redirect_chain == [("/console/keys", 302)]
    raw = SECRET.search(created.content.decode()).group(1)
    assert ApiKey.objects.filter(account=owner.account, name="reload-me").count() == 1
    # What a browser's reload repeats after a redirect is the GET, not the POST.
    reloaded = console.get("/console/keys").content.decode()
    assert ApiKey.objects.filter(account=owner.account, name="reload-me").count() == 1
    assert raw not in reloaded
    assert 'id="new-key"' not in reloaded
    assert "console:once:api_key" not in console.session


def test_a_rejected_form_comes_back_with_its_errors_and_input(console):
    response = console.post("/console/keys", {"name": "", "scopes": ["nonsense"]}, follow=True)
    assert response.redirect_chain == [("/console/keys", 302)]
    body = response.content.decode()
    assert "This field is required." in body
    assert "is not one of the available choices" in body
    # Shown once: the next visit shows a fresh form.
    assert "This field is required." not in console.get("/console/keys").content.decode()


def test_a_refused_invitation_keeps_what_was_typed(owner, console):
    response = console.post(
        "/console/operators", {"email": owner.operator.email, "name": "Again"}, follow=True
    )
    body = response.content.decode()
    assert "code-conflict" in body
    assert 'value="Again"' in body


FORM_PAGES = {
    "/console/keys": ["name", "scopes"],
    "/console/operators": ["email", "name"],
    "/console/domains": ["domain"],
    "/console/webhooks": ["url", "events"],
    "/console/login": ["email", "next"],
    "/console/login/verify": ["email", "code", "next"],
    "/confirm": ["code"],
    "/welcome": ["session_id"],
}
field_values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["read", "send", "oversight", "a@b.example", "https://x.example/", "\x00"]),
)


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    page=st.sampled_from(sorted(FORM_PAGES)),
    values=st.lists(field_values, min_size=1, max_size=3),
    data=st.data(),
)
def test_any_form_input_is_answered_by_a_redirect(owner, page, values, data):
    """Whatever is typed into a console form, the POST redirects and the page it
    redirects to renders; a key is created at most once per POST."""
    fields = data.draw(st.lists(st.sampled_from(FORM_PAGES[page]), unique=True, min_size=1))
    payload = {name: values[index % len(values)] for index, name in enumerate(fields)}
    client = signed_in(owner)
    keys_before = ApiKey.objects.filter(account=owner.account).count()
    response = client.post(page, payload, follow=True)
    assert response.redirect_chain, (page, payload)
    assert response.status_code == 200
    assert ApiKey.objects.filter(account=owner.account).count() - keys_before <= 1
    # The kept form was shown once and dropped.
    assert not [key for key, _ in client.session.items() if key.startswith("console:form:")]


def _route(pattern: URLPattern, value: str) -> str:
    return "/" + re.sub(r"<(?:\w+:)?\w+>", value, str(pattern.pattern))


PAYLOADS: list[dict[str, Any]] = [
    {},
    # Every field name the console's forms and buttons use, with values no view accepts.
    {
        "action": "bogus",
        "code": "x",
        "email": "not-an-address",
        "name": "",
        "scopes": ["nope"],
        "domain": "",
        "url": "ftp://x",
        "events": ["nope"],
        "mode": "reckless",
        "address": "",
        "account_id": "nope",
        "session_id": "",
        "reason": "",
        "next": "https://elsewhere.example/",
    },
]


@pytest.mark.parametrize("payload", PAYLOADS, ids=["empty", "invalid"])
@pytest.mark.parametrize("identifier", ["01NOTANID0000000000000000", "owned"])
def test_every_full_page_console_post_redirects(owner, payload, identifier):
    """Each console URL, POSTed to as a signed-in operator without HTMX, answers a
    redirect, or 405 where the view takes no POST at all."""
    key = ApiKey.objects.create(
        account=owner.account, name="k", prefix="mm_live_prgtest0", key_hash="h"
    )
    posted = 0
    for pattern in urlpatterns:
        assert isinstance(pattern, URLPattern)
        # With "owned", every id is a real key's id: the views look it up in their own
        # table and answer not-found for the others, which must redirect too.
        url = _route(pattern, key.pk if identifier == "owned" else identifier)
        client = signed_in(owner)  # a fresh session: logout must not sign the rest out
        response = client.post(url, payload)
        if response.status_code == 405:
            continue
        posted += 1
        assert 300 <= response.status_code < 400, (url, response.status_code)
    # Every form the console has: sign-in, activation, keys, operators, domains, webhooks,
    # the queue, modes, settings, approvals, billing and the destructive actions.
    assert posted >= 20
    assert ApiKey.objects.filter(account=owner.account).count() == 1


def _key(tenant: Tenant) -> tuple[str, dict[str, str], Callable[[], bool]]:
    key = ApiKey.objects.create(
        account=tenant.account, name="doomed", prefix="mm_live_doomed00", key_hash="h"
    )
    return (
        f"/console/keys/{key.pk}/revoke",
        {},
        lambda: not ApiKey.objects.get(pk=key.pk).is_active,
    )


def _domain(tenant: Tenant) -> tuple[str, dict[str, str], Callable[[], bool]]:
    domain = Domain.objects.create(account=tenant.account, domain="mail.doomed.example")
    return (
        f"/console/domains/{domain.pk}/delete",
        {},
        lambda: not Domain.objects.filter(pk=domain.pk).exists(),
    )


def _webhook(action: str) -> Callable[[Tenant], tuple[str, dict[str, str], Callable[[], bool]]]:
    def make(tenant: Tenant) -> tuple[str, dict[str, str], Callable[[], bool]]:
        hook = WebhookSubscription.objects.create(
            account=tenant.account,
            url="https://93.184.215.14/mm",
            events=["message.received"],
            signing_secret="whsec_old",
        )

        def done() -> bool:
            current = WebhookSubscription.objects.filter(pk=hook.pk).first()
            if action == "delete":
                return current is None
            return current is not None and current.signing_secret != "whsec_old"

        return f"/console/webhooks/{hook.pk}/action", {"action": action}, done

    return make


def _suppression(tenant: Tenant) -> tuple[str, dict[str, str], Callable[[], bool]]:
    Suppression.objects.create(
        account=tenant.account, email_address="doomed@x.example", reason="manual"
    )
    return (
        "/console/suppression/remove",
        {"address": "doomed@x.example"},
        lambda: not Suppression.objects.filter(email_address="doomed@x.example").exists(),
    )


def _mode(target: str) -> Callable[[Tenant], tuple[str, dict[str, str], Callable[[], bool]]]:
    def make(tenant: Tenant) -> tuple[str, dict[str, str], Callable[[], bool]]:
        mailbox = tenant.mailbox
        return (
            f"/console/mailboxes/{mailbox.pk}/mode",
            {"mode": target},
            lambda: type(mailbox).objects.get(pk=mailbox.pk).oversight_mode == target,
        )

    return make


def _stop(tenant: Tenant) -> tuple[str, dict[str, str], Callable[[], bool]]:
    return (
        "/console/sending/stop",
        {},
        lambda: type(tenant.account).objects.get(pk=tenant.account.pk).sending_stopped,
    )


def _resume(tenant: Tenant) -> tuple[str, dict[str, str], Callable[[], bool]]:
    type(tenant.account).objects.filter(pk=tenant.account.pk).update(sending_stopped=True)
    return (
        "/console/sending/resume",
        {},
        lambda: not type(tenant.account).objects.get(pk=tenant.account.pk).sending_stopped,
    )


ACTIONS = {
    "stop all sending": _stop,
    "resume sending": _resume,
    "revoke key": _key,
    "remove domain": _domain,
    "delete webhook": _webhook("delete"),
    "rotate webhook secret": _webhook("rotate"),
    "lift suppression": _suppression,
    "tighten mode": _mode("gated_all"),
    "loosen mode": _mode("monitored"),
}


@pytest.mark.parametrize("make", ACTIONS.values(), ids=ACTIONS.keys())
def test_destructive_actions_wait_for_confirmation(owner, make):
    owner.mailbox.oversight_mode = "gated_send"
    owner.mailbox.save()
    client: Client = signed_in(owner)
    url, fields, done = make(owner)
    asked = client.post(url, fields)
    assert asked.status_code == 302
    assert asked["Location"].startswith(url)
    assert not done()
    page = client.get(asked["Location"])
    body = page.content.decode()
    assert page.status_code == 200
    assert "Please confirm" in body
    assert 'name="confirmed" value="yes"' in body
    assert not done()
    # What the confirmation page's form posts: the same fields and the confirmation.
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', body))
    assert hidden.pop("confirmed") == "yes"
    hidden.pop("csrfmiddlewaretoken", None)
    assert hidden == fields
    confirmed = client.post(url, {**fields, "confirmed": "yes"})
    assert confirmed.status_code == 302
    assert done()


def test_cancelling_the_subscription_asks_first(console):
    asked = console.post("/console/billing/action", {"action": "cancel"})
    assert asked["Location"] == "/console/billing/action?action=cancel"
    page = console.get(asked["Location"]).content.decode()
    assert "Cancel the subscription?" in page
    assert 'name="confirmed" value="yes"' in page
