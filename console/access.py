"""Who is using the console: the signed-in person acting as an operator of one account."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Concatenate, cast

from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME, logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from accounts.actors import Actor
from accounts.models import Account, Operator
from accounts.selectors import operator_for_user
from accounts.sign_in import SESSION_ACCOUNT_KEY, session_is_current
from multimail.errors import ApiError


class HtmxRequest(HttpRequest):
    """Any console request: django-htmx's middleware sets ``htmx`` on every request."""

    htmx: HtmxDetails


class ConsoleRequest(HtmxRequest):
    """A request that passed ``operator_required``: who acts, for which account."""

    operator: Operator
    account: Account
    actor: Actor


def operator_required[**P, R: HttpResponseBase](
    view: Callable[Concatenate[ConsoleRequest, P], R],
) -> Callable[Concatenate[HttpRequest, P], R | HttpResponse]:
    """Sign-in gate for console pages: sets ``request.operator``, ``.account``, ``.actor``.
    Generic in the response so a streamed page (the audit CSV) passes through typed."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> R | HttpResponse:
        console_request = cast(ConsoleRequest, request)
        operator = None
        if request.user.is_authenticated:
            operator = operator_for_user(
                user_id=request.user.pk, account_id=request.session.get(SESSION_ACCOUNT_KEY)
            )
        if operator is not None and not session_is_current(request, operator):
            # Signed out everywhere: this whole browser session ends, like a sign-out.
            logout(request)
            messages.info(request, "You were signed out everywhere. Sign in again.")
            operator = None
        if operator is None:
            if console_request.htmx:
                # An expired session during polling: send the whole page to the login form.
                return HttpResponseClientRedirect("/console/login")
            return redirect_to_login(request.get_full_path(), "/console/login", REDIRECT_FIELD_NAME)
        if request.session.get(SESSION_ACCOUNT_KEY) != operator.account_id:
            request.session[SESSION_ACCOUNT_KEY] = operator.account_id
        console_request.operator = operator
        console_request.account = operator.account
        console_request.actor = Actor.for_operator(operator)
        return view(console_request, *args, **kwargs)

    return wrapper


def error_message(request: HttpRequest, error: ApiError) -> None:
    """Show a service's catalog error as a page message: same code, same text as the API."""
    messages.error(request, error.message, extra_tags=f"code-{error.code}")
