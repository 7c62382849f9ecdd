"""Every write of an account or API key row replaces the account's principal version.

Each process remembers API principals (multimail.authentication) until the account's
version (accounts.principals) changes, and the version changes only when a service calls
``principal_versions_bump``: the models have no save()/delete() hook (business rules live
in services). A writer that forgets the call leaves a revoked key or a deactivated account
usable by every process that remembers it, so this test reads the project's code and fails
on any function that writes those rows without the call.

Why reading the code and not running each service: a run only covers the writers someone
remembered to list, and the writer to catch is the one nobody remembered. The syntax tree
sees every function. What counts as a write of the rows:

- ``Account.objects…update/delete/update_or_create/bulk_update(…)`` and the same on
  ``ApiKey.objects``, through any chain of queryset methods;
- ``save``/``delete``/``update`` on a name the function knows holds such a row or queryset:
  a parameter annotated ``Account``/``ApiKey``, or a name assigned (or looped over) from
  ``Account.objects``/``ApiKey.objects`` or from a project function annotated to return
  them;
- the same on an ``.account``, ``.api_key`` or ``.api_keys`` attribute (``actor.account``).

Creating rows is not a change (no process remembers a row that did not exist), and a write
of ``last_used_at`` alone is not either (the request refreshes it on the principal it
keeps). The call must be in the same function as the write, so it is in its transaction.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import RequestFactory

from accounts.models import Account, ApiKey

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("accounts", "billing", "bench", "console", "mailboxes", "multimail", "oversight")
MODELS = frozenset({"Account", "ApiKey"})
MODEL_WORD = re.compile(r"\b(?:Account|ApiKey)\b")
ROW_ATTRIBUTES = frozenset({"account", "api_key", "api_keys"})
WRITES = frozenset({"save", "delete", "update", "update_or_create", "bulk_update"})
QUERYSET_STEPS = frozenset(
    {"all", "filter", "exclude", "select_for_update", "select_related", "only", "defer", "order_by"}
)
UNVERSIONED_FIELDS = frozenset({"last_used_at"})
BUMP = "principal_versions_bump"


def _mentions_model_rows(node: ast.AST, row_functions: frozenset[str]) -> bool:
    for inner in ast.walk(node):
        if (
            isinstance(inner, ast.Attribute)
            and inner.attr == "objects"
            and isinstance(inner.value, ast.Name)
            and inner.value.id in MODELS
        ):
            return True
        if (
            isinstance(inner, ast.Call)
            and isinstance(inner.func, ast.Name)
            and inner.func.id in row_functions
        ):
            return True
    return False


def _annotation_names_model(annotation: ast.expr | None) -> bool:
    """``Account``, ``"ApiKey | None"``, ``tuple[ApiKey, str]``, ``QuerySet[Account]``…"""
    return annotation is not None and MODEL_WORD.search(ast.unparse(annotation)) is not None


def _row_functions(trees: dict[Path, ast.Module]) -> dict[Path, frozenset[str]]:
    """Per module, the functions it can call by name that are annotated to return an
    account or key (or a tuple holding one): its own, and those it imports from the project
    (names alone would mix up two modules' private ``_locked``)."""
    defined = {
        path: {
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and _annotation_names_model(node.returns)
        }
        for path, tree in trees.items()
    }
    by_module = {".".join(path.with_suffix("").parts): names for path, names in defined.items()}
    visible = {}
    for path, tree in trees.items():
        names = set(defined[path])
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in by_module:
                exported = by_module[node.module]
                names.update(
                    alias.asname or alias.name for alias in node.names if alias.name in exported
                )
        visible[path] = frozenset(names)
    return visible


def _bound_names(target: ast.expr) -> Iterator[str]:
    for node in ast.walk(target):
        if isinstance(node, ast.Name):
            yield node.id


def _binds_model_rows(node: ast.AnnAssign | ast.For, row_functions: frozenset[str]) -> bool:
    if isinstance(node, ast.For):
        return _mentions_model_rows(node.iter, row_functions)
    return _annotation_names_model(node.annotation) or (
        node.value is not None and _mentions_model_rows(node.value, row_functions)
    )


def _row_names(function: ast.AST, row_functions: frozenset[str]) -> set[str]:
    names: set[str] = set()
    if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
        arguments = function.args
        for argument in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs):
            if _annotation_names_model(argument.annotation):
                names.add(argument.arg)
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and _mentions_model_rows(node.value, row_functions):
            for target in node.targets:
                names.update(_bound_names(target))
        elif isinstance(node, ast.AnnAssign | ast.For) and _binds_model_rows(node, row_functions):
            names.update(_bound_names(node.target))
    return names


def _writes_model_rows(receiver: ast.expr, row_names: set[str]) -> bool:
    """The receiver of a write call is an account/key row or a queryset of them."""
    while True:
        if isinstance(receiver, ast.Call) and isinstance(receiver.func, ast.Attribute):
            if receiver.func.attr not in QUERYSET_STEPS:
                return False
            receiver = receiver.func.value
        elif isinstance(receiver, ast.Attribute):
            if receiver.attr == "objects":
                return isinstance(receiver.value, ast.Name) and receiver.value.id in MODELS
            return receiver.attr in ROW_ATTRIBUTES
        elif isinstance(receiver, ast.Name):
            return receiver.id in row_names
        else:
            return False


def _only_unversioned_fields(call: ast.Call, method: str) -> bool:
    if method == "update":
        return bool(call.keywords) and all(
            keyword.arg in UNVERSIONED_FIELDS for keyword in call.keywords
        )
    if method == "save":
        for keyword in call.keywords:
            if keyword.arg == "update_fields" and isinstance(keyword.value, ast.List | ast.Tuple):
                fields = {
                    element.value
                    for element in keyword.value.elts
                    if isinstance(element, ast.Constant)
                }
                return len(fields) == len(keyword.value.elts) and fields <= UNVERSIONED_FIELDS
    return False


def _scopes(tree: ast.Module) -> Iterator[ast.AST]:
    """The module and each function: a write is checked against its innermost scope."""
    yield tree
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def _own_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a scope, not those of the functions nested in it."""
    for child in ast.iter_child_nodes(scope):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        yield child
        yield from _own_nodes(child)


def _calls_bump(scope: ast.AST) -> bool:
    for node in _own_nodes(scope):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name == BUMP:
                return True
    return False


def principal_writes(
    trees: dict[Path, ast.Module],
) -> list[tuple[str, int, str, bool]]:
    """(file, line, function, bumps) of every write of account or key rows."""
    row_functions = _row_functions(trees)
    found = []
    for path, tree in sorted(trees.items()):
        for scope in _scopes(tree):
            row_names = _row_names(scope, row_functions[path])
            bumps = _calls_bump(scope)
            name = getattr(scope, "name", "<module>")
            for node in _own_nodes(scope):
                if not (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in WRITES
                ):
                    continue
                if _only_unversioned_fields(node, node.func.attr):
                    continue
                if _writes_model_rows(node.func.value, row_names):
                    found.append((str(path), node.lineno, name, bumps))
    return found


def _project_trees() -> dict[Path, ast.Module]:
    trees = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            relative = path.relative_to(ROOT)
            trees[relative] = ast.parse(path.read_text(), filename=str(relative))
    return trees


def test_every_write_of_an_account_or_key_replaces_its_principal_version() -> None:
    forgotten = [
        f"{path}:{line} in {function}()"
        for path, line, function, bumps in principal_writes(_project_trees())
        if not bumps
    ]
    assert forgotten == [], (
        "These write Account/ApiKey rows without principal_versions_bump(...) in the same "
        "function: processes would keep authenticating with the old rows."
    )


def test_the_known_writers_are_recognised() -> None:
    """The reading must keep finding the writers there are, or it would pass vacuously."""
    seen = {(path, function) for path, _, function, _ in principal_writes(_project_trees())}
    assert {
        ("accounts/services.py", "account_update"),
        ("accounts/services.py", "account_delete"),
        ("accounts/services.py", "api_key_update"),
        ("accounts/services.py", "api_key_revoke"),
        ("accounts/support.py", "support_account_deactivate"),
        ("accounts/support.py", "support_sending_set"),
        ("accounts/email_change.py", "email_change_confirm"),
        ("accounts/signup.py", "_activate"),
        ("billing/periods.py", "current_period"),
        ("billing/services/enforcement.py", "account_deactivate_unpaid"),
        ("billing/services/enforcement.py", "unpaid_accounts_enforce"),
        ("billing/services/pricing.py", "pricing_account_activate"),
        ("billing/services/subscriptions.py", "account_plan_sync"),
        ("mailboxes/services/delivery_events.py", "account_enforce_reputation"),
        ("oversight/stop.py", "_stop_record"),
        ("oversight/stop.py", "sending_resume"),
    } <= seen


def test_a_writer_without_the_call_is_reported() -> None:
    source = """
from accounts.models import Account, ApiKey

def rename(account: Account) -> None:
    account.save(update_fields=["name"])

def revoke_all(account_id: str) -> None:
    ApiKey.objects.filter(account_id=account_id).update(is_active=False)

def deactivate(actor) -> None:
    actor.account.state = "deactivated"
    actor.account.save()

def remove(slug: str) -> None:
    for account in Account.objects.filter(slug=slug):
        account.delete()

def touch(key_id: str) -> None:
    ApiKey.objects.filter(pk=key_id).update(last_used_at=None)

def create() -> None:
    Account.objects.create(name="x")

def bumped(account: Account) -> None:
    account.save()
    principal_versions_bump([account.pk])
"""
    writes = principal_writes({Path("example.py"): ast.parse(source)})
    assert [(function, bumps) for _, _, function, bumps in writes] == [
        ("rename", False),
        ("revoke_all", False),
        ("deactivate", False),
        ("remove", False),
        ("bumped", True),
    ]


def test_the_admin_writes_accounts_and_keys_only_through_services() -> None:
    """Django's own ModelAdmin.save_model/delete_model/delete_queryset write the rows
    without the call, and the reading above cannot see them (they are not project code):
    the admins of these models must not reach them. AccountAdmin saves through the account
    service and its actions call the support services; keys are read-only there."""
    request = RequestFactory().get("/admin/")
    request.user = get_user_model()(is_superuser=True, is_active=True)
    for model in (Account, ApiKey):
        model_admin = admin.site._registry[model]
        assert not model_admin.has_add_permission(request)
        assert not model_admin.has_delete_permission(request)
        assert (
            not model_admin.has_change_permission(request)
            or type(model_admin).save_model is not admin.ModelAdmin.save_model
        )
