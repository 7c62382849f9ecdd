"""A confirmation step for destructive actions that works without JavaScript.

The action's URL answers GET with a page that says what will happen and holds a POST
form with ``confirmed=yes``; a POST without it (a plain button elsewhere in the console)
redirects to that page with the posted fields, so nothing is done until confirmed there.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.http import HttpResponse, HttpResponseRedirect

from console.access import HtmxRequest
from console.htmx import render_page

CONFIRM_FIELD = "confirmed"


@dataclass(frozen=True, slots=True)
class Confirmation:
    title: str
    detail: str
    button: str
    cancel_url: str
    section: str


def is_confirmed(request: HtmxRequest) -> bool:
    return request.POST.get(CONFIRM_FIELD) == "yes"


def confirmation_redirect(request: HtmxRequest) -> HttpResponse:
    """An unconfirmed POST: to the confirmation page, carrying what was posted."""
    fields = {
        name: value
        for name, value in request.POST.items()
        if name not in ("csrfmiddlewaretoken", CONFIRM_FIELD)
    }
    query = f"?{urlencode(fields)}" if fields else ""
    return HttpResponseRedirect(request.path + query)


def confirmation_page(request: HtmxRequest, confirmation: Confirmation) -> HttpResponse:
    return render_page(
        request,
        "console/confirm_action.html",
        {
            "confirmation": confirmation,
            "fields": sorted(request.GET.items()),
            "action_url": request.path,
            "section": confirmation.section,
        },
    )
