from __future__ import annotations

import time

import pytest

from multimail.ids import new_id


def test_ids_made_in_a_row_sort_in_creation_order() -> None:
    ids = [new_id() for _ in range(5000)]  # many share a millisecond
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(len(value) == 26 for value in ids)


def test_a_large_clock_jump_back_follows_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    real = time.time()
    monkeypatch.setattr(time, "time", lambda: real + 3600)  # a test (or clock) in the future
    future = new_id()
    monkeypatch.setattr(time, "time", lambda: real)
    now = new_id()
    assert now[:10] < future[:10]  # back on the real clock: sorts with other processes' ids
