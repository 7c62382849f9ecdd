"""Who is using the console: the signed-in person acting as an operator of one account."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django_htmx.http import HttpResponseClientRedirect

from accounts.actors import Actor
from accounts.models import Account, Operator
from multimail.errors import ApiError
from oversight.console.services import operator_for_user

SESSION_ACCOUNT_KEY = "console_account_id"


class ConsoleRequest(HttpRequest):
    """What ``operator_required`` adds to the request (for type checkers)."""

    operator: Operator
    account: Account
    actor: Actor


View = Callable[..., HttpResponse]


def operator_required(view: View) -> View:
    """Sign-in gate for console pages: sets ``request.operator``, ``.account``, ``.actor``."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        operator = None
        if request.user.is_authenticated:
            operator = operator_for_user(
                user_id=request.user.pk, account_id=request.session.get(SESSION_ACCOUNT_KEY)
            )
        if operator is None:
            if getattr(request, "htmx", False):
                # An expired session during polling: send the whole page to the login form.
                return HttpResponseClientRedirect("/console/login")
            return redirect_to_login(request.get_full_path(), "/console/login", REDIRECT_FIELD_NAME)
        if request.session.get(SESSION_ACCOUNT_KEY) != operator.account_id:
            request.session[SESSION_ACCOUNT_KEY] = operator.account_id
        request.operator = operator  # type: ignore[attr-defined]
        request.account = operator.account  # type: ignore[attr-defined]
        request.actor = Actor.for_operator(operator)  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return wrapper


def error_message(request: HttpRequest, error: ApiError) -> None:
    """Show a service's catalog error as a page message: same code, same text as the API."""
    messages.error(request, error.message, extra_tags=f"code-{error.code}")
