#!/usr/bin/env python3
"""Instructions per request, counted by callgrind: how to compare checkouts on a host too
noisy to time.

    .venv/bin/python bench/instructions.py [--root DIR ...] [--requests 10] [--only LABEL ...]

valgrind's callgrind counts the instructions a process runs, not the seconds it takes: the
same count for the same code and inputs whatever else the machine is doing, where the CPU
figures of ``scenarios_cpu.py`` move by 2x on a shared host. Each ``--root`` (default: this
checkout) runs its own ``bench/scenarios_cpu.py`` under ``valgrind --tool=callgrind``
(about 30x slower than native; Django's start-up alone takes minutes), with the counters
zeroed before each batch of requests and dumped after it, through valgrind's client
requests (a small library this script builds in ``var/`` with gcc and the headers of
Debian's ``valgrind`` package). It prints, per request shape, million instructions per
request (the best of the batches) for each root, and each root's ratio to the first.

An instruction count is not a time: cache misses, branch mispredictions and the database
server's work are not in it. It says how much work a change removed from the request's
own process; the timed figures of ``run.py`` on a quiet host say what that buys.

Roots run one after another, on the same bench database as ``scenarios_cpu.py``: their
sends reuse its fresh and grown accounts and request numbers, which the 60-second
duplicate check would refuse from the previous root, so the script waits that long first.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HELPER_SOURCE = """
#include <valgrind/callgrind.h>
void marks_zero(void) { CALLGRIND_ZERO_STATS; }
void marks_dump(const char *name) { CALLGRIND_DUMP_STATS_AT(name); }
"""
# A resource id in a path (ULIDs, the bulk emails' ids): one shape for every id.
_ID = re.compile(r"/[0-9A-Z]{26}(?=/|$)")
_DUPLICATE_WINDOW_SECONDS = 61


def _program(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        sys.exit(f"{name} is needed (Debian: apt-get install gcc valgrind)")
    return found


def _helper() -> Path:
    library = ROOT / "var" / "libcallgrind-marks.so"
    if not library.exists():
        library.parent.mkdir(exist_ok=True)
        source = library.with_suffix(".c")
        source.write_text(HELPER_SOURCE)
        subprocess.run(  # noqa: S603 (fixed argv, no shell)
            [_program("gcc"), "-O1", "-shared", "-fPIC", "-o", str(library), str(source)],
            check=True,
        )
    return library


def _inside(root: Path, library: Path, argv: list[str]) -> None:
    """In the process valgrind runs: ``root``'s scenarios_cpu.py, each batch of more than
    one request (the query count's single request is left out) between a zeroing and a
    dump named after the request."""
    marks = ctypes.CDLL(str(library))
    sys.path.insert(0, str(root / "bench"))
    sys.argv = ["scenarios_cpu.py", *argv]
    import scenarios_cpu

    measured = scenarios_cpu._batch

    def counted(client: object, target: Any, requests: int) -> None:
        if requests == 1:
            measured(client, target, requests)
            return
        marks.marks_zero()
        measured(client, target, requests)
        marks.marks_dump(f"{target.method} {_ID.sub('/{id}', target.path)} n={requests}".encode())

    scenarios_cpu._batch = counted
    scenarios_cpu.main()


def _count(root: Path, library: Path, argv: list[str], out: Path) -> dict[str, float]:
    """Million instructions per request of each request shape ``root`` measured."""
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONHASHSEED": "0"}
    result = subprocess.run(  # noqa: S603 (fixed argv, no shell)
        [
            _program("valgrind"), "--tool=callgrind", f"--callgrind-out-file={out}/cg.%p",
            str(root / ".venv" / "bin" / "python"), str(Path(__file__).resolve()),
            "--inside", str(root), "--", *argv,
        ],
        cwd=root, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode != 0:
        sys.exit(f"{root}: scenarios_cpu.py under callgrind failed:\n{result.stdout[-3000:]}")
    best: dict[str, float] = defaultdict(lambda: float("inf"))
    for dump in out.glob("cg.*.*"):
        text = dump.read_text(errors="replace")
        name = re.search(r"Client Request: (.*)", text)
        total = re.search(r"^(?:summary|totals): (\d+)", text, re.MULTILINE)
        if name is None or total is None:
            continue
        shape, requests = name.group(1).rsplit(" n=", 1)
        best[shape] = min(best[shape], int(total.group(1)) / int(requests) / 1e6)
    return dict(best)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--inside":
        _inside(Path(sys.argv[2]), ROOT / "var" / "libcallgrind-marks.so", sys.argv[4:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, action="append", help="checkout (repeatable)")
    parser.add_argument("--requests", type=int, default=10, help="per batch (3 batches)")
    parser.add_argument("--only", action="append", default=[], metavar="LABEL")
    args = parser.parse_args()
    roots = [root.resolve() for root in args.root or [ROOT]]
    library = _helper()
    argv = ["--requests", str(args.requests), "--json"]
    for label in args.only:
        argv += ["--only", label]
    counts: list[dict[str, float]] = []
    for index, root in enumerate(roots):
        if index:
            time.sleep(_DUPLICATE_WINDOW_SECONDS)
        print(f"counting {root} ...", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory() as out:
            counts.append(_count(root, library, argv, Path(out)))
    shapes = list(dict.fromkeys(shape for found in counts for shape in found))
    header = " | ".join(f"{root.name} (M instr)" for root in roots)
    ratios = " | ".join(f"{root.name} / {roots[0].name}" for root in roots[1:])
    print(f"| request | {header} |" + (f" {ratios} |" if ratios else ""))
    print("|---|" + "---:|" * (len(roots) * 2 - 1))
    for shape in shapes:
        values = [found.get(shape) for found in counts]
        cells = [f"{v:.2f}" if v is not None else "-" for v in values]
        first = values[0]
        cells += [
            f"{v / first:.2f}" if v is not None and first is not None else "-" for v in values[1:]
        ]
        print(f"| {shape} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
