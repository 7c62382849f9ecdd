"""MultiMail's own Python SDK (``multimail`` 0.1.1 on PyPI), loaded beside this project.

The SDK's package and this project's are both named ``multimail``, and the project's comes
first on ``sys.path``, so ``import multimail`` gives the project. The SDK is loaded from its
installed files instead: its modules import each other as ``multimail.*``, so for the time of
the load they take that name in ``sys.modules``, then the project's modules are put back. It
happens once, when this module is imported during collection, before any server thread runs.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from importlib.metadata import distribution
from pathlib import Path
from types import ModuleType


def _ours(name: str) -> bool:
    return name == "multimail" or name.startswith("multimail.")


def _load_sdk() -> ModuleType:
    init = Path(str(distribution("multimail").locate_file("multimail/__init__.py")))
    project = {name: module for name, module in sys.modules.items() if _ours(name)}
    for name in project:
        del sys.modules[name]
    try:
        spec = importlib.util.spec_from_file_location(
            "multimail", init, submodule_search_locations=[str(init.parent)]
        )
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["multimail"] = module
        with warnings.catch_warnings():
            # The package warns on import that it is no longer maintained; it still is the
            # client that existing agents run, which is why it is tested here.
            warnings.simplefilter("ignore", FutureWarning)
            spec.loader.exec_module(module)
        return module
    finally:
        for name in [name for name in sys.modules if _ours(name)]:
            del sys.modules[name]
        sys.modules.update(project)


sdk = _load_sdk()
MultiMail = sdk.MultiMail
AsyncMultiMail = sdk.AsyncMultiMail
MultiMailError = sdk.MultiMailError
AuthenticationError = sdk.AuthenticationError
NotFoundError = sdk.NotFoundError
RateLimitError = sdk.RateLimitError
ValidationError = sdk.ValidationError
