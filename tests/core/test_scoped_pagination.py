"""A scoped page is written so PostgreSQL serves it from the (scope, id) index."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mailboxes.models import Email
from mailboxes.selectors import email_list
from tests.conftest import Tenant
from tests.inbound.conftest import make_email

pytestmark = pytest.mark.django_db


def test_email_list_scopes_by_any_array_and_orders_by_the_index(
    owner: Tenant, other: Tenant
) -> None:
    mine = [make_email(owner.mailbox).pk for _ in range(3)]
    make_email(other.mailbox)
    with CaptureQueriesContext(connection) as captured:
        page = email_list(mailbox=owner.mailbox, params={"limit": "2"})
    assert [email.pk for email in page.items] == sorted(mine, reverse=True)[:2]
    sql = captured.captured_queries[-1]["sql"]
    if connection.vendor == "postgresql":
        assert '"mailbox_id" = ANY(' in sql
    assert 'ORDER BY "mailboxes_email"."mailbox_id" ASC, "mailboxes_email"."id" DESC' in sql
    rest = email_list(mailbox=owner.mailbox, params={"cursor": page.next_cursor})
    assert [email.pk for email in rest.items] == sorted(mine, reverse=True)[2:]
    assert Email.objects.count() == 4
