"""manage.py create_account and seed_demo."""

from __future__ import annotations

import json
import re
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Account, AccountState, ApiKey
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_account_json() -> None:
    data = json.loads(
        run(
            "create_account",
            "--name",
            "Hooli Inc",
            "--email",
            "gavin@hooli.example",
            "--plan",
            "pro",
            "--json",
        )
    )
    account = Account.objects.get(pk=data["account_id"])
    assert data["slug"] == "hooli-inc"
    assert account.state == AccountState.ACTIVE
    assert account.plan == "pro"
    assert account.operators.get().email == "gavin@hooli.example"
    assert data["mailbox_address"] == "hooli-inc@hooli-inc.multimail.localhost"
    assert "admin" in data["scopes"]
    response = client_for(data["api_key"]).get("/v1/account")
    assert response.json()["slug"] == "hooli-inc"


def test_create_account_text_output() -> None:
    out = run("create_account", "--name", "Pied Piper", "--email", "r@pp.example")
    assert "slug: pied-piper" in out
    assert "api_key: mm_live_" in out


def test_create_account_refuses_a_taken_slug() -> None:
    run("create_account", "--name", "Pied Piper", "--email", "r@pp.example")
    with pytest.raises(CommandError, match="slug_taken"):
        run("create_account", "--name", "Pied Piper", "--email", "x@pp.example")


def test_seed_demo_keeps_its_key_until_the_credentials_file_is_gone(
    tmp_path: Path, settings: Any
) -> None:
    settings.DEMO_CREDENTIALS_FILE = tmp_path / "demo.env"
    first = run("seed_demo")
    second = run("seed_demo")
    assert Account.objects.filter(slug="demo").count() == 1
    assert "/console/" in first
    assert "operator@demo.example" in first
    key_re = re.compile(r"API key:\s+(mm_live_\S+)")
    key = key_re.search(first).group(1)
    assert key_re.search(second).group(1) == key
    mailbox = Account.objects.get(slug="demo").mailboxes.get()
    assert re.search(rf"Mailbox id:\s+{mailbox.pk}", second)
    stored = settings.DEMO_CREDENTIALS_FILE.read_text()
    assert f"MULTIMAIL_API_KEY={key}\n" in stored
    assert f"MULTIMAIL_MAILBOX_ID={mailbox.pk}\n" in stored
    assert settings.DEMO_CREDENTIALS_FILE.stat().st_mode & 0o077 == 0  # it holds a live key
    assert client_for(key).get("/v1/account").status_code == 200

    settings.DEMO_CREDENTIALS_FILE.unlink()
    new = key_re.search(run("seed_demo")).group(1)
    assert new != key
    assert client_for(new).get("/v1/account").status_code == 200
    assert client_for(key).get("/v1/account").status_code == 401
    assert ApiKey.objects.filter(account__slug="demo", is_active=True).count() == 1


def test_seed_demo_replaces_a_stored_key_that_was_revoked(tmp_path: Path, settings: Any) -> None:
    settings.DEMO_CREDENTIALS_FILE = tmp_path / "demo.env"
    key = re.search(r"API key:\s+(mm_live_\S+)", run("seed_demo")).group(1)
    ApiKey.objects.filter(account__slug="demo").update(is_active=False)
    again = re.search(r"API key:\s+(mm_live_\S+)", run("seed_demo")).group(1)
    assert again != key
    assert client_for(again).get("/v1/account").status_code == 200
