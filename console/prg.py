"""POST/redirect/GET for console forms: a full-page POST always answers a redirect.

Reloading the page after a POST must never repeat it (a second API key, a second
invitation). So a rejected form is kept in the session and shown again, errors and all,
by the GET it redirects to; and a secret that may be shown only once (a new API key) is
kept in the session until that GET shows it, then dropped.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import HttpRequest, QueryDict

_FORM_PREFIX = "console:form:"
_ONCE_PREFIX = "console:once:"
# The CSRF token is per request. A well-formed code the service refused may be a real
# one-time secret, so it is not written to the session; a malformed one is shown again.
_NOT_KEPT = frozenset({"csrfmiddlewaretoken"})
_NOT_KEPT_WHEN_VALID = frozenset({"code"})


def form_keep(request: HttpRequest, form: forms.Form, *, path: str | None = None) -> None:
    """Keep what was typed for the page at ``path`` (default: this one) to show again."""
    invalid = not form.is_valid()
    dropped = _NOT_KEPT if invalid else _NOT_KEPT | _NOT_KEPT_WHEN_VALID
    data = {
        name: form.data.getlist(name)  # type: ignore[attr-defined]
        for name in form.data
        if name not in dropped
    }
    request.session[_FORM_PREFIX + (path or request.path)] = {"data": data, "invalid": invalid}


def form_kept[F: forms.Form](
    request: HttpRequest,
    form_class: type[F],
    *,
    initial: dict[str, Any] | None = None,
    **kwargs: Any,
) -> F:
    """The page's form: the one kept by the last POST (once), else a fresh one.

    An invalid form comes back bound, so its errors show; a valid one that the service
    refused comes back as initial values (the page message tells why).
    """
    kept = request.session.pop(_FORM_PREFIX + request.path, None)
    if kept is None:
        return form_class(initial=initial, **kwargs)
    if kept["invalid"]:
        data = QueryDict(mutable=True)
        for name, typed in kept["data"].items():
            data.setlist(name, typed)
        return form_class(data, **kwargs)
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
