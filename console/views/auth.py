"""Sign-in by emailed code, sign-out, account switching, the team: invitations, removal
and "sign out everywhere"."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import Operator
from accounts.selectors import operator_for_user, operator_list, operator_role_get
from accounts.services import operator_invite, operator_remove, operator_sessions_end
from accounts.sign_in import (
    SESSION_ACCOUNT_KEY,
    console_login_start,
    console_login_verify,
    session_sign_in,
)
from console.access import ConsoleRequest, HtmxRequest, error_message, operator_required
from console.confirmation import (
    Confirmation,
    confirmation_page,
    confirmation_redirect,
    is_confirmed,
)
from console.forms import InviteForm, LoginCodeForm, LoginEmailForm
from console.htmx import render_page
from console.prg import form_keep, form_kept
from multimail.errors import ApiError
from multimail.exceptions import request_id_of
from multimail.pagination import cursor_paginate
from multimail.ratelimit import client_ip

OPERATOR_PAGE_SIZE = 50


def _safe_next(request: HttpRequest, candidate: str) -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse("console-queue")


@require_http_methods(["GET", "POST"])
def login_start(request: HtmxRequest) -> HttpResponse:
    next_url = request.POST.get("next") or request.GET.get("next", "")
    if request.method == "GET":
        # Taken from the session even when not shown, so it cannot turn up later.
        form = form_kept(request, LoginEmailForm, initial={"next": next_url})
        if request.user.is_authenticated:
            # Already signed in (the console checks the role itself and sends back here if
            # the person no longer operates any account).
            role = operator_for_user(user_id=int(request.user.pk), account_id=None)
            if role is not None:
                return redirect(_safe_next(request, next_url))
        return render_page(request, "console/login.html", {"form": form})
    form = LoginEmailForm(request.POST)
    if form.is_valid():
        email = form.cleaned_data["email"]
        try:
            started = console_login_start(email=email, next_url=form.cleaned_data["next"])
        except ApiError as error:
            error_message(request, error)
        else:
            messages.info(
                request,
                f"If {started.masked_email} may sign in, a code is on its way. Check your inbox "
                "and enter the code below.",
            )
            query = f"?email={started.email}"
            if form.cleaned_data["next"]:
                query += f"&next={form.cleaned_data['next']}"
            return redirect(reverse("console-login-verify") + query)
    form_keep(request, form)
    return redirect("console-login")


@require_http_methods(["GET", "POST"])
def login_verify(request: HtmxRequest) -> HttpResponse:
    """GET shows the form (prefilled from the emailed link, so a mail scanner fetching the
    link signs nobody in); POST redeems the code."""
    if request.method == "POST":
        form = LoginCodeForm(request.POST)
        if form.is_valid():
            try:
                roles = console_login_verify(
                    email=form.cleaned_data["email"],
                    code=form.cleaned_data["code"],
                    client_ip=client_ip(request),
                )
            except ApiError as error:
                error_message(request, error)
            else:
                if not roles:
                    messages.error(request, "This address no longer operates any account.")
                    return redirect("console-login")
                session_sign_in(request, roles[0])
                messages.success(request, f"Signed in to {roles[0].account.name}.")
                return redirect(_safe_next(request, form.cleaned_data["next"]))
        form_keep(request, form)
        return redirect("console-login-verify")
    form = form_kept(
        request,
        LoginCodeForm,
        initial={
            "email": request.GET.get("email", ""),
            "code": request.GET.get("code", ""),
            "next": request.GET.get("next", ""),
        },
    )
    return render_page(request, "console/login_verify.html", {"form": form})


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    messages.info(request, "You are signed out.")
    return redirect("console-login")


@require_POST
@operator_required
def switch_account(request: ConsoleRequest) -> HttpResponse:
    role = operator_role_get(
        user_id=request.operator.user_id, account_id=request.POST.get("account_id", "")
    )
    if role is None:
        messages.error(request, "You do not operate that account.")
    else:
        request.session[SESSION_ACCOUNT_KEY] = role.account_id
        messages.success(request, f"Switched to {role.account.name}.")
    return redirect("console-queue")


@require_http_methods(["GET", "POST"])
@operator_required
def operators(request: ConsoleRequest) -> HttpResponse:
    if request.method == "POST":
        form = InviteForm(request.POST)
        if form.is_valid():
            try:
                invited = operator_invite(
                    actor=request.actor,
                    email=form.cleaned_data["email"],
                    name=form.cleaned_data["name"],
                )
            except ApiError as error:
                error_message(request, error)
            else:
                messages.success(
                    request, f"{invited.email} is now an operator; they sign in with a code."
                )
                return redirect("console-operators")
        form_keep(request, form)
        return redirect("console-operators")
    try:
        page = cursor_paginate(
            operator_list(account=request.account),
            request.GET,
            default_limit=OPERATOR_PAGE_SIZE,
            oldest_first=True,
        )
    except ApiError as error:
        error_message(request, error)
        return redirect("console-operators")
    return render_page(
        request,
        "console/operators.html",
        {
            "form": form_kept(request, InviteForm),
            "operators": page.items,
            "next_cursor": page.next_cursor,
            "section": "operators",
        },
    )


@require_http_methods(["GET", "POST"])
@operator_required
def operator_remove_view(request: ConsoleRequest, operator_id: str) -> HttpResponse:
    """GET asks for confirmation; only a confirmed POST removes the operator."""
    if request.method == "GET":
        target = _team_member(request, operator_id)
        if target is None:
            return redirect("console-operators")
        return confirmation_page(
            request,
            Confirmation(
                title=f"Remove operator {target.email}?",
                detail=f"{target.email} can no longer sign in to {request.account.name}'s "
                "console, is signed out of it on every browser at once, and is told by email. "
                "Invite them again to undo this.",
                button="Remove operator",
                cancel_url=reverse("console-operators"),
                section="operators",
            ),
        )
    if not is_confirmed(request):
        return confirmation_redirect(request)
    try:
        removed = operator_remove(
            actor=request.actor, operator_id=operator_id, request_id=request_id_of(request)
        )
    except ApiError as error:
        error_message(request, error)
    else:
        messages.success(request, f"{removed.email} is no longer an operator.")
    return redirect("console-operators")


def _team_member(request: ConsoleRequest, operator_id: str) -> Operator | None:
    target = operator_list(account=request.account).filter(pk=operator_id).first()
    if target is None:
        messages.error(request, "That operator does not exist in this account.")
    return target


@require_http_methods(["GET", "POST"])
@operator_required
def operator_sign_out_view(request: ConsoleRequest, operator_id: str) -> HttpResponse:
    """End every console session of an operator of this account (yourself included): GET
    asks for confirmation; only a confirmed POST does it."""
    yourself = operator_id == request.operator.pk
    if request.method == "GET":
        target = _team_member(request, operator_id)
        if target is None:
            return redirect("console-operators")
        who = "You are" if yourself else f"{target.email} is"
        where = "every browser and device, this one included" if yourself else "every browser"
        return confirmation_page(
            request,
            Confirmation(
                title="Sign out everywhere?" if yourself else f"Sign {target.email} out?",
                detail=f"{who} signed out of {request.account.name}'s console on {where}, "
                "and signs in again with an emailed code. Use it after a lost device or a "
                "sign-in on a shared computer.",
                button="Sign out everywhere",
                cancel_url=reverse("console-operators"),
                section="operators",
            ),
        )
    if not is_confirmed(request):
        return confirmation_redirect(request)
    try:
        target = operator_sessions_end(
            actor=request.actor, operator_id=operator_id, request_id=request_id_of(request)
        )
    except ApiError as error:
        error_message(request, error)
        return redirect("console-operators")
    if yourself:
        logout(request)
        messages.success(request, "You are signed out everywhere. Sign in again here.")
        return redirect("console-login")
    messages.success(request, f"{target.email} is signed out on every browser.")
    return redirect("console-operators")
