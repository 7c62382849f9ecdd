"""Full-text search on the embedded default: SQLite FTS5, kept by triggers (migration 0011).

Runs in a child process on a fresh SQLite database, as `make run` uses it: the test suite's
own database is PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json
from mailboxes import selectors
from mailboxes.models import Direction, EmailStatus
from tests.conftest import make_tenant
from tests.inbound.conftest import make_email

tenant = make_tenant("embedded", mode="gated_all")
box = tenant.mailbox
ids = {
    "subject": make_email(box, subject="Quarterly invoice").pk,
    "body": make_email(box, subject="x", text="the zeppelin lands").pk,
    "sender": make_email(box, subject="x", from_address="walrus@fjord.example").pk,
    "recipient": make_email(box, subject="x", cc=["narwhal@fjord.example"]).pk,
    "attachment": make_email(box, subject="x", attachment_names="contract-draft.pdf").pk,
    "held": make_email(
        box, subject="Quarterly secret", status=EmailStatus.PENDING_INBOUND_APPROVAL
    ).pk,
    "outbound": make_email(
        box, direction=Direction.OUTBOUND, status=EmailStatus.PENDING_SCAN,
        subject="x", markdown="meet at the lighthouse",
    ).pk,
}
ranked = [make_email(box, subject="kiwi" if i % 2 else "note", text="kiwi").pk for i in range(5)]

def search(q, agent=True, **params):
    return [e.pk for e in selectors.email_list(
        mailbox=box, params={"q": q, **params}, agent=agent).items]

def pages(q):
    seen, cursor = [], None
    while True:
        page = selectors.email_list(
            mailbox=box, params={"q": q, "limit": 2, **({"cursor": cursor} if cursor else {})})
        seen += [e.pk for e in page.items]
        cursor = page.next_cursor
        if cursor is None:
            return seen

out = {name: search(q) for name, q in [
    ("subject", "invoice"), ("body", "zeppelin"), ("sender", "from:walrus"),
    ("recipient", "to:narwhal"), ("attachment", "contract"), ("outbound", "lighthouse"),
    ("phrase", '"zeppelin lands"'), ("excluded", "quarterly -invoice"),
]}
out["operator_quarterly"] = sorted(search("quarterly", agent=False))
out["kiwi"] = search("kiwi")
out["kiwi_paged"] = pages("kiwi")
# The triggers keep the index: an edit is found by its new words, a deletion is gone.
from mailboxes.models import Email
Email.objects.filter(pk=ids["body"]).update(text="the airship lands")
out["after_update"] = [search("zeppelin"), search("airship")]
Email.objects.filter(pk=ids["subject"]).delete()
out["after_delete"] = search("invoice")
print(json.dumps({"ids": ids, "ranked": ranked, "out": out}))
"""


def test_search_runs_on_sqlite_fts5(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    env.pop("REDIS_URL", None)

    def manage(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout

    manage("migrate", "--noinput")
    answer = json.loads(manage("shell", "-c", SCRIPT).strip().splitlines()[-1])
    ids, ranked, out = answer["ids"], answer["ranked"], answer["out"]
    for name in ("subject", "body", "sender", "recipient", "attachment", "outbound"):
        assert out[name] == [ids[name]], name
    assert out["phrase"] == [ids["body"]]
    # The held inbound email is found by the operator only.
    assert out["excluded"] == []
    assert out["operator_quarterly"] == sorted([ids["subject"], ids["held"]])
    # Subject matches rank above body-only matches; newest first among equals.
    in_subject = [pk for i, pk in enumerate(ranked) if i % 2][::-1]
    assert out["kiwi"][: len(in_subject)] == in_subject
    assert sorted(out["kiwi"]) == sorted(ranked)
    assert out["kiwi_paged"] == out["kiwi"]
    assert out["after_update"] == [[], [ids["body"]]]
    assert out["after_delete"] == []
