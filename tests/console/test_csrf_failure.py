"""A refused form (CSRF) answers the console's own page, styled under the CSP."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_a_form_without_its_token_gets_the_console_page() -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post("/console/login", {"email": "ops@example.org"})
    assert response.status_code == 403
    body = response.content.decode()
    assert "This form could not be sent" in body
    assert "Allow cookies for this site" in body  # no CSRF cookie was sent
    assert "console/console.css" in body  # the stylesheet, allowed by the CSP
    assert "style=" not in body  # no inline styles, which the CSP would block

    client.get("/console/login")  # now the browser holds the cookie, but the form is stale
    response = client.post("/console/login", {"email": "ops@example.org"})
    assert response.status_code == 403
    assert "reload the page" in response.content.decode()
