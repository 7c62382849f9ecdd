"""POST/redirect/GET for console forms: a full-page POST always answers a redirect.

Reloading the page after a POST must never repeat it (a second API key, a second
invitation). So a rejected form is kept in the session and shown again, errors and all,
by the GET it redirects to, with a service's catalog error next to the field it names; the
outcome of a form on a long page is kept for that form and shown beside it; and a secret
that may be shown only once (a new API key) is kept in the session until that GET shows
it, then dropped.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import HttpRequest, QueryDict

from multimail.errors import ApiError

_FORM_PREFIX = "console:form:"
_ONCE_PREFIX = "console:once:"
_FEEDBACK_PREFIX = "console:feedback:"
# The CSRF token is per request. A well-formed code the service refused may be a real
# one-time secret, so it is not written to the session; a malformed one is shown again.
_NOT_KEPT = frozenset({"csrfmiddlewaretoken"})
_NOT_KEPT_WHEN_VALID = frozenset({"code"})


def form_keep(
    request: HttpRequest,
    form: forms.Form,
    *,
    path: str | None = None,
    error: ApiError | None = None,
) -> None:
    """Keep what was typed for the page at ``path`` (default: this one) to show again.

    ``error``, a service's refusal that names one of the form's fields (its ``param``),
    is shown next to that field, in the catalog's words.
    """
    field_errors = (
        {error.param: error.message} if error is not None and error.param in form.fields else {}
    )
    invalid = not form.is_valid() or bool(field_errors)
    dropped = _NOT_KEPT if invalid else _NOT_KEPT | _NOT_KEPT_WHEN_VALID
    data = {
        name: form.data.getlist(name)  # type: ignore[attr-defined]
        for name in form.data
        if name not in dropped
    }
    request.session[_FORM_PREFIX + (path or request.path)] = {
        "data": data,
        "invalid": invalid,
        "errors": field_errors,
    }


def form_kept[F: forms.Form](
    request: HttpRequest,
    form_class: type[F],
    *,
    initial: dict[str, Any] | None = None,
    path: str | None = None,
    **kwargs: Any,
) -> F:
    """The page's form: the one kept by the last POST (once), else a fresh one. ``path``:
    the URL the form posts to, when it is not this page's own.

    An invalid form comes back bound, so its errors show; a valid one that the service
    refused comes back as initial values (the page message tells why).
    """
    kept = request.session.pop(_FORM_PREFIX + (path or request.path), None)
    if kept is None:
        return form_class(initial=initial, **kwargs)
    if kept["invalid"]:
        data = QueryDict(mutable=True)
        for name, typed in kept["data"].items():
            data.setlist(name, typed)
        bound = form_class(data, **kwargs)
        for field, message in kept.get("errors", {}).items():
            bound.add_error(field, message)
        return bound
    # Choice widgets take a single value as a one-item list.
    values = {
        name: typed if len(typed) > 1 else typed[0] for name, typed in kept["data"].items() if typed
    }
    return form_class(initial={**(initial or {}), **values}, **kwargs)


def show_once(request: HttpRequest, name: str, value: dict[str, Any]) -> None:
    """Keep ``value`` for the next page that asks for ``name``, and only that one."""
    request.session[_ONCE_PREFIX + name] = value


def shown_once(request: HttpRequest, name: str) -> dict[str, Any] | None:
    return request.session.pop(_ONCE_PREFIX + name, None)  # type: ignore[no-any-return]


def feedback_keep(
    request: HttpRequest, form_id: str, text: str, *, error: bool = False, path: str | None = None
) -> None:
    """The outcome of the POST of form ``form_id``, for the page at ``path`` to show beside
    that form: on a long page a message at the top would be out of sight."""
    key = _FEEDBACK_PREFIX + (path or request.path)
    kept = request.session.get(key, {})
    kept[form_id] = {"text": text, "level": "error" if error else "success"}
    request.session[key] = kept


def feedback_kept(request: HttpRequest) -> dict[str, dict[str, str]]:
    """This page's kept outcomes, by form id (once)."""
    return request.session.pop(_FEEDBACK_PREFIX + request.path, {})  # type: ignore[no-any-return]
