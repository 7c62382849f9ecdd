"""Public endpoints without an API key: the signing key and the unsubscribe link."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from mailboxes.services.compliance import unsubscribe_apply, unsubscribe_read
from mailboxes.services.signing import public_key_document
from multimail.errors import not_found


@require_GET
def signing_key(request: HttpRequest) -> HttpResponse:
    response = JsonResponse(public_key_document())
    response["Cache-Control"] = "public, max-age=3600"
    return response


# Mail providers' one-click unsubscribe (RFC 8058) POSTs without a CSRF token or cookies;
# the signed token is the proof that the request comes from the email.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    pending = unsubscribe_read(token=token)
    if pending is None:
        raise not_found(
            "unsubscribe_link",
            "This unsubscribe link is not valid. Use the complete link from the email.",
        )
    context = {"token": token, "addresses": pending.addresses, "sender": pending.account.name}
    if request.method == "GET":
        # GET only shows a confirmation: link scanners and previews must not unsubscribe.
        return render(request, "public/unsubscribe.html", context)
    unsubscribe_apply(request=pending)
    return render(request, "public/unsubscribed.html", context)
