"""No import cycle runs between modules of different apps.

The layers contract in ``.importlinter`` allows a few documented upward imports; this test
makes sure none of them closes a loop. Every import statement counts, including those
inside functions (grimp reads the whole syntax tree).
"""

from __future__ import annotations

import grimp

APPS = ("console", "oversight", "mailboxes", "billing", "accounts", "multimail")


def _app(module: str) -> str:
    return module.split(".", 1)[0]


def test_no_cycle_crosses_an_app_boundary() -> None:
    graph = grimp.build_graph(*APPS, include_external_packages=False)
    cycles = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            if _app(imported) == _app(importer):
                continue
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back:
                cycles.append((importer, *back))
    assert cycles == []
