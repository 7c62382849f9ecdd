"""`make run` as a user starts it: SQLite, gunicorn with 2 workers, the SMTP listener and the
scheduler, on free loopback ports with its own state directory. Reached over HTTP only."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.mmap_dict import MmapedDict

ROOT = Path(__file__).resolve().parents[2]
# Generous: starting means a migrate and four Django processes, on a machine that may be busy.
START_TIMEOUT = 240.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Answer:
    status: int
    # Header names are case-insensitive (uvicorn sends them in lower case).
    headers: Message
    body: Any


@dataclass
class EmbeddedService:
    var_dir: Path
    log_path: Path
    port: int = field(default_factory=free_port)
    smtp_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {
            **{
                name: value
                for name, value in os.environ.items()
                # What the test run sets for itself: make run must see a fresh shell's env.
                if name
                not in {
                    "DATABASE_URL",
                    "REDIS_URL",
                    "CELERY_BROKER_URL",
                    "PROMETHEUS_MULTIPROC_DIR",
                    "METRICS_TOKEN",
                    "DJANGO_SETTINGS_MODULE",
                    "MAKEFLAGS",
                    "MAKELEVEL",
                }
            },
            "MULTIMAIL_VAR_DIR": str(self.var_dir),
            "MULTIMAIL_SMTP_PORT": str(self.smtp_port),
        }
        self.log_path.write_bytes(b"")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                ["make", "--no-print-directory", "run", f"PORT={self.port}"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, as a terminal gives it
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"make run exited:\n{self.log()[-4000:]}")
            log_text = self.log()
            if "SMTP listener on" in log_text and "Scheduler:" in log_text:
                try:
                    # Up once both workers answer: each loads the app on its first request.
                    if self.get("/health").status == 200 and len(self.served("/health")) == 2:
                        return
                except OSError:
                    pass
            time.sleep(0.2)
        raise RuntimeError(f"make run did not come up:\n{self.log()[-4000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, how: str = "ctrl-c") -> float:
        """Ctrl-C (SIGINT to the whole group, as a terminal sends it) or SIGTERM to make
        alone (as a process manager does). Returns the seconds until every process of the
        group is gone."""
        assert self.process is not None
        started = time.monotonic()
        if how == "ctrl-c":
            os.killpg(self.process.pid, signal.SIGINT)
        else:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            # Which process of the group did not stop, and what the service printed.
            group = subprocess.run(
                ["ps", "-o", "pid,stat,etime,args", "-g", str(self.process.pid)],
                capture_output=True,
                text=True,
            ).stdout
            raise AssertionError(f"make run did not stop:\n{group}\n{self.log()[-4000:]}") from None
        while _group_alive(self.process.pid) and time.monotonic() - started < 60:
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        self.process = None
        return elapsed

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None

    def credentials(self) -> dict[str, str]:
        values = {}
        for line in (self.var_dir / "demo.env").read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and not name.startswith("#"):
                values[name] = value
        return values

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        source: str = "127.0.0.1",
    ) -> Answer:
        """One HTTP request on a new connection (so the kernel picks the worker), from the
        loopback address ``source`` (limits per client address start afresh for a new one)."""
        sent = dict(headers or {})
        if key:
            sent["Authorization"] = f"Bearer {key}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        connection = http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=60, source_address=(source, 0)
        )
        try:
            connection.request(method, path, body=data, headers=sent)
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        try:
            parsed: Any = json.loads(raw)
        except ValueError:
            parsed = raw.decode(errors="replace")
        return Answer(status=response.status, headers=response.headers, body=parsed)

    def get(self, path: str, **options: Any) -> Answer:
        return self.request("GET", path, **options)

    def served(self, route: str) -> Counter[int]:
        """Requests to ``route`` by worker pid, read from the counter files each process
        writes under PROMETHEUS_MULTIPROC_DIR."""
        counts: Counter[int] = Counter()
        for path in (self.var_dir / "metrics").glob("counter_*.db"):
            pid = int(path.stem.rsplit("_", 1)[1])
            for key, value, *_ in MmapedDict.read_all_values_from_file(str(path)):
                name, _, labels, _ = json.loads(key)
                if name == "multimail_http_requests" and labels.get("route") == route:
                    counts[pid] += int(value)
        return +counts


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def running_service(
    tmp_path_factory: pytest.TempPathFactory, name: str
) -> Iterator[EmbeddedService]:
    """A `make run` of its own state directory, killed when the fixture ends."""
    base = tmp_path_factory.mktemp(name)
    service = EmbeddedService(var_dir=base / "var", log_path=base / "make-run.log")
    service.start()
    try:
        yield service
    finally:
        service.kill()


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedService]:
    yield from running_service(tmp_path_factory, "embedded")
