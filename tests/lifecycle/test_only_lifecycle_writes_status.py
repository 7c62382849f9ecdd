"""Nothing but ``mailboxes/lifecycle.py`` writes ``Email.status``.

A static check over the project's source (tests, migrations and the bench's seeding are
not the product). It flags, outside the lifecycle module:

* ``status=`` (or ``"status"`` in ``defaults``/``fields``) given to a write of the ORM
  (``create``, ``update``, ``bulk_update``, ``get_or_create``, ``update_or_create``, the
  model's constructor) on anything that is not known to be another model;
* ``x.status = ...``, ``setattr(x, "status", ...)`` and ``x.save(update_fields=[..."status"])``
  where ``x`` is not known to be another model;
* raw SQL that names the email table.

"Known to be another model" comes from the function itself: a parameter annotated with a
model class; a name assigned from (or looping over) an expression that starts with a model
class, such as ``Domain.objects.get(...)``, or from a call of a function of the module
whose return type names one model; a name checked with ``isinstance``; ``self`` in a class
that is not Email. Anything else counts as a possible email, so a new write of an email's
status cannot slip past by its variable's name.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TypeGuard

from django.apps import apps

ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "billing", "console", "mailboxes", "multimail", "oversight")
LIFECYCLE = ROOT / "mailboxes" / "lifecycle.py"
_RAW_EMAIL_WRITE = re.compile(r'\b(update|into)\s+"?mailboxes_email"?(\s|$)', re.IGNORECASE)
ORM_WRITES = {"create", "update", "bulk_update", "get_or_create", "update_or_create"}
EMAIL = "Email"


def _model_names() -> set[str]:
    return {model.__name__ for model in apps.get_models()}


def _sources() -> Iterator[Path]:
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts and path != LIFECYCLE:
                yield path


def _root_name(node: ast.expr) -> str | None:
    """The name an expression chain starts from: ``Email`` in ``Email.objects.filter(...)``."""
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Attribute | ast.Subscript):
            node = node.value
        elif isinstance(node, ast.Name):
            return node.id
        else:
            return None


def _names_in(annotation: ast.expr | None) -> set[str]:
    if annotation is None:
        return set()
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        annotation = ast.parse(annotation.value, mode="eval").body
    return {node.id for node in ast.walk(annotation) if isinstance(node, ast.Name)}


class _Scope:
    """What the function says about its names' models."""

    def __init__(
        self,
        function: ast.AST,
        models: set[str],
        returns: dict[str, set[str]],
        cls: str | None = None,
    ) -> None:
        self.models = models
        self.known: dict[str, str] = {}
        if cls is not None:
            # In a method, ``self`` is the class: a model's own method is judged as that model.
            self.known["self"] = cls if cls == EMAIL or cls in models else "<not a model>"
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = function.args
            for argument in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]:
                self._learn(argument.arg, _names_in(argument.annotation))
        for node in ast.walk(function):
            if isinstance(node, ast.Assign):
                value = node.value
                called = value.func if isinstance(value, ast.Call) else None
                if isinstance(called, ast.Name) and called.id in returns:
                    candidates = returns[called.id]  # a function of this module, by its type
                else:
                    candidates = {_root_name(value) or ""}
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self._learn(target.id, candidates)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                self._learn(node.target.id, _names_in(node.annotation))
            elif isinstance(node, ast.For) and isinstance(node.target, ast.Name):
                self._learn(node.target.id, {_root_name(node.iter) or ""})
            elif _is_isinstance(node):
                subject, kind = node.args
                if isinstance(subject, ast.Name):
                    self._learn(subject.id, _names_in(kind))

    def _learn(self, name: str, candidates: set[str]) -> None:
        found = candidates & self.models
        if len(found) == 1:
            self.known.setdefault(name, found.pop())

    def other_model(self, node: ast.expr) -> bool:
        """Whether ``node`` is known to be (a queryset of) a model other than Email."""
        root = _root_name(node)
        model = root if root in self.models else self.known.get(root or "")
        return model is not None and model != EMAIL


def _is_isinstance(node: ast.AST) -> TypeGuard[ast.Call]:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "isinstance"
        and len(node.args) == 2
    )


def _writes_status(call: ast.Call) -> bool:
    for keyword in call.keywords:
        if keyword.arg == "status":
            return True
        if keyword.arg in ("defaults", "fields", "update_fields") and _mentions_status(
            keyword.value
        ):
            return True
    return any(_mentions_status(argument) for argument in call.args[1:])


def _mentions_status(node: ast.expr) -> bool:
    return any(isinstance(item, ast.Constant) and item.value == "status" for item in ast.walk(node))


def _violations(path: Path, models: set[str], root: Path = ROOT) -> Iterator[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    returns = {
        node.name: _names_in(node.returns)
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    # Each node is judged in the innermost function that contains it.
    owner: dict[int, _Scope] = {}

    def judge_in(node: ast.AST, scope: _Scope, cls: str | None) -> None:
        owner[id(node)] = scope
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                judge_in(child, _Scope(child, models, returns, cls=cls), None)
            elif isinstance(child, ast.ClassDef):
                judge_in(child, scope, child.name)
            else:
                judge_in(child, scope, None)

    judge_in(tree, _Scope(tree, models, returns), None)
    where = path.relative_to(root)
    for node in ast.walk(tree):
        scope = owner[id(node)]
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == EMAIL and _writes_status(node):
                yield f"{where}:{node.lineno}: Email(status=...)"
            elif isinstance(func, ast.Name) and func.id == "setattr" and len(node.args) >= 2:
                name = node.args[1]
                if (
                    isinstance(name, ast.Constant)
                    and name.value == "status"
                    and not scope.other_model(node.args[0])
                ):
                    yield f"{where}:{node.lineno}: setattr(..., 'status', ...)"
            elif isinstance(func, ast.Attribute):
                writes = func.attr in ORM_WRITES or func.attr == "save"
                if writes and _writes_status(node) and not scope.other_model(func.value):
                    yield f"{where}:{node.lineno}: .{func.attr}(...) writes status"
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for item in ast.walk(target):
                    if (
                        isinstance(item, ast.Attribute)
                        and item.attr == "status"
                        and isinstance(item.ctx, ast.Store)
                        and not scope.other_model(item.value)
                    ):
                        yield f"{where}:{item.lineno}: .status = ..."
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _RAW_EMAIL_WRITE.search(node.value)
        ):
            yield f"{where}:{node.lineno}: raw SQL on the email table"


def test_only_the_lifecycle_writes_email_status() -> None:
    models = _model_names()
    found = [line for path in _sources() for line in _violations(path, models)]
    assert not found, "Email.status written outside mailboxes/lifecycle.py:\n" + "\n".join(found)


def test_the_check_sees_each_kind_of_write(tmp_path: Path) -> None:
    """The checker itself: every way of writing the status is caught, other models' are not."""
    models = _model_names()
    source = tmp_path / "sample.py"
    source.write_text(
        "def writes(email, queryset, domain: Domain):\n"
        "    Email.objects.filter(pk=1).update(status='sent')\n"
        "    Email.objects.create(status='unread')\n"
        "    Email(status='unread')\n"
        "    queryset.update(status='sent')\n"
        "    email.status = 'sent'\n"
        "    setattr(email, 'status', 'sent')\n"
        "    email.save(update_fields=['status'])\n"
        "    email.emails.update_or_create(defaults={'status': 'sent'})\n"
        "    run('UPDATE mailboxes_email SET status = 1')\n"
        "    domain.status = 'active'\n"
        "    delivery = WebhookDelivery.objects.get(pk=1)\n"
        "    delivery.status = 'failed'\n"
        "    delivery.save(update_fields=['status'])\n"
        "    WebhookDelivery.objects.filter(pk=1).update(status='pending')\n"
        "    account = _account()\n"
        "    account.status = 'x'\n"
        "    if isinstance(subscription, Subscription):\n"
        "        subscription.status = 'active'\n"
        "    run('SELECT status FROM mailboxes_email')\n"
        "def _account() -> Account | None: ...\n"
        "class Problem(Exception):\n"
        "    def __init__(self):\n"
        "        self.status = 400\n"
        "class Email:\n"
        "    def cancel(self):\n"
        "        self.status = 'cancelled'\n"
    )
    found = list(_violations(source, models, root=tmp_path))
    assert sorted(int(line.split(":")[1]) for line in found) == [*range(2, 11), 27], found
