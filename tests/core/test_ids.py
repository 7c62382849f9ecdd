from __future__ import annotations

from multimail.ids import new_id


def test_ids_made_in_a_row_sort_in_creation_order() -> None:
    ids = [new_id() for _ in range(5000)]  # many share a millisecond
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(len(value) == 26 for value in ids)
