"""Sign-in by emailed code, sign-out, account switching, operator invitations."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login, logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import Operator
from multimail.errors import ApiError
from oversight.console.access import SESSION_ACCOUNT_KEY, error_message, operator_required
from oversight.console.forms import InviteForm, LoginCodeForm, LoginEmailForm
from oversight.console.htmx import client_ip, render_page
from oversight.console.services import (
    console_login_start,
    console_login_verify,
    operator_for_user,
    operator_invite,
)


def _safe_next(request: HttpRequest, candidate: str) -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse("console-queue")


@require_http_methods(["GET", "POST"])
def login_start(request: HttpRequest) -> HttpResponse:
    next_url = request.POST.get("next") or request.GET.get("next", "")
    if request.method == "GET" and request.user.is_authenticated:
        # Already signed in (the console checks the role itself and sends back here if
        # the person no longer operates any account).
        role = operator_for_user(user_id=int(request.user.pk), account_id=None)
        if role is not None:
            return redirect(_safe_next(request, next_url))
    form = LoginEmailForm(request.POST or None, initial={"next": next_url})
    if request.method == "POST" and form.is_valid():
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
    return render_page(request, "console/login.html", {"form": form})


@require_http_methods(["GET", "POST"])
def login_verify(request: HttpRequest) -> HttpResponse:
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
                login(request, roles[0].user, backend="django.contrib.auth.backends.ModelBackend")
                request.session[SESSION_ACCOUNT_KEY] = roles[0].account_id
                messages.success(request, f"Signed in to {roles[0].account.name}.")
                return redirect(_safe_next(request, form.cleaned_data["next"]))
    else:
        form = LoginCodeForm(
            initial={
                "email": request.GET.get("email", ""),
                "code": request.GET.get("code", ""),
                "next": request.GET.get("next", ""),
            }
        )
    return render_page(request, "console/login_verify.html", {"form": form})


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    messages.info(request, "You are signed out.")
    return redirect("console-login")


@require_POST
@operator_required
def switch_account(request: HttpRequest) -> HttpResponse:
    role = (
        Operator.objects.filter(
            user_id=request.operator.user_id,  # type: ignore[attr-defined]
            account_id=request.POST.get("account_id", ""),
        )
        .select_related("account")
        .first()
    )
    if role is None:
        messages.error(request, "You do not operate that account.")
    else:
        request.session[SESSION_ACCOUNT_KEY] = role.account_id
        messages.success(request, f"Switched to {role.account.name}.")
    return redirect("console-queue")


@require_http_methods(["GET", "POST"])
@operator_required
def operators(request: HttpRequest) -> HttpResponse:
    form = InviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            invited = operator_invite(
                actor=request.actor,  # type: ignore[attr-defined]
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
    roles = (
        Operator.objects.filter(account=request.account)  # type: ignore[attr-defined]
        .select_related("invited_by")
        .order_by("created_at")
    )
    return render_page(
        request,
        "console/operators.html",
        {"form": form, "operators": roles, "section": "operators"},
    )
