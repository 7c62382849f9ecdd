"""Oversight endpoints: the pending queue, decisions, mode upgrades, the hosted page.

Views parse, call a service, render. Who may decide is settled here by scope: ``oversight``
keys decide, ``oversight_read`` keys list, and a ``send`` key (the agent) can do neither;
the hosted page's authority is its emailed token alone, never an API key.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.codes import TypedCode, typed_code
from accounts.serializers import ApprovalCodeSerializer, PendingApprovalSerializer
from mailboxes.models import Direction, Email, EmailStatus
from multimail.authentication import api_principal
from multimail.errors import ApiError
from multimail.pagination import cursor_paginate, pagination_parameters
from multimail.ratelimit import client_ip
from oversight import admin_actions, policy, selectors, services, stop
from oversight.admin_actions import PendingApproval, admin_action_run
from oversight.facts import decision_facts, decision_facts_bulk
from oversight.models import ApprovalLink
from oversight.serializers import (
    BatchDecideResponseSerializer,
    DecideRequestSerializer,
    DecideResponseSerializer,
    PendingEmailSerializer,
    PendingListSerializer,
    SendingSwitchSerializer,
    UpgradedSerializer,
    UpgradeRedeemSerializer,
    UpgradeRequestedSerializer,
    UpgradeRequestSerializer,
)


def _request_id(request: Request | HttpRequest) -> str:
    return str(getattr(request, "request_id", ""))


class PendingListView(APIView):
    required_scopes = {"GET": "oversight_read"}

    @extend_schema(
        operation_id="oversight_pending_list",
        parameters=pagination_parameters(),
        responses=PendingListSerializer,
        summary="Emails waiting for an oversight decision, newest first",
    )
    def get(self, request: Request) -> Response:
        page = cursor_paginate(
            selectors.pending_emails(account=api_principal(request).account), request.query_params
        )
        facts = decision_facts_bulk(emails=page.items)
        return Response(
            {
                "emails": PendingEmailSerializer(
                    [facts[email.pk] for email in page.items], many=True
                ).data,
                "cursor": page.next_cursor,
            }
        )


class DecideView(APIView):
    required_scopes = {"POST": "oversight"}

    @extend_schema(
        operation_id="oversight_decide",
        request=DecideRequestSerializer,
        responses=PolymorphicProxySerializer(
            component_name="DecideAnswer",
            serializers=[DecideResponseSerializer, BatchDecideResponseSerializer],
            resource_type_field_name=None,
        ),
        summary="Approve or reject a pending email, or several (email_ids)",
    )
    def post(self, request: Request) -> Response:
        body = DecideRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if "email_ids" in body.validated_data:
            results = services.emails_decide(
                actor=api_principal(request).actor,
                email_ids=body.validated_data["email_ids"],
                action=body.validated_data["action"],
                versions=body.validated_data.get("versions"),
                reason=body.validated_data["reason"],
                request_id=_request_id(request),
            )
            return Response({"results": [result.as_json() for result in results]})
        decision = services.email_decide(
            actor=api_principal(request).actor,
            email_id=body.validated_data["email_id"],
            action=body.validated_data["action"],
            version=body.validated_data.get("version"),
            reason=body.validated_data["reason"],
            request_id=_request_id(request),
            edits=body.validated_data.get("edits"),
        )
        return Response(
            {
                "status": str(decision.status),
                "postmark_message_id": decision.postmark_message_id,
            }
        )


class StopView(APIView):
    # Stopping only tightens: the operator's oversight key or an admin key, no code.
    required_scopes = {"POST": ("admin", "oversight")}

    @extend_schema(
        operation_id="oversight_stop",
        request=None,
        responses=SendingSwitchSerializer,
        summary="Stop all outbound mail of the account at once (the stop switch)",
    )
    def post(self, request: Request) -> Response:
        account = stop.sending_stop(
            actor=api_principal(request).actor, request_id=_request_id(request)
        )
        return Response(
            {
                "status": "stopped",
                "sending_stopped": account.sending_stopped,
                "message": "Sending is stopped: no outbound email of this account leaves. "
                f"New sends are accepted and held with the reason '{policy.STOPPED_HOLD_REASON}'"
                "; scheduled and queued mail is held instead of sent. Only the operator can "
                "resume (the console, or POST /v1/oversight/resume with their approval_code).",
            }
        )


class ResumeView(APIView):
    required_scopes = {"POST": ("admin", "oversight")}

    @extend_schema(
        operation_id="oversight_resume",
        request=ApprovalCodeSerializer,
        responses={200: SendingSwitchSerializer, 202: PendingApprovalSerializer},
        summary="Resume sending after a stop (needs the operator's approval code)",
    )
    def post(self, request: Request) -> Response:
        body = ApprovalCodeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        outcome = admin_action_run(
            actor=api_principal(request).actor,
            action=admin_actions.SENDING_RESUME,
            params=admin_actions.SendingResume(),
            approval_code=typed_code(body.validated_data.get("approval_code"), request),
            request_id=_request_id(request),
        )
        if isinstance(outcome, PendingApproval):
            return Response(outcome.body, status=202)
        return Response(
            {
                "status": "resumed",
                "sending_stopped": outcome.sending_stopped,
                "message": "Sending resumed. Mail the stop held is still held: approve or "
                "reject it (POST /v1/oversight/decide).",
            }
        )


class RequestUpgradeView(APIView):
    required_scopes = {"POST": "send"}

    @extend_schema(
        operation_id="mailbox_request_upgrade",
        request=UpgradeRequestSerializer,
        responses=UpgradeRequestedSerializer,
        summary="Ask the operator for a higher oversight mode (emails them a code)",
    )
    def post(self, request: Request, mailbox_id: str) -> Response:
        body = UpgradeRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        target = body.validated_data["target_mode"]
        services.mailbox_upgrade_request(
            actor=api_principal(request).actor,
            mailbox_id=mailbox_id,
            target_mode=target,
            request_id=_request_id(request),
        )
        return Response(
            {
                "status": "upgrade_requested",
                "target_mode": target,
                "message": "A one-time upgrade code was emailed to the operator. Once they give "
                f'it to you, call POST /v1/mailboxes/{mailbox_id}/upgrade with {{"code": ...}}. '
                "The code works once, for 24 hours.",
            }
        )


class UpgradeView(APIView):
    required_scopes = {"POST": "send"}

    @extend_schema(
        operation_id="mailbox_upgrade",
        request=UpgradeRedeemSerializer,
        responses=UpgradedSerializer,
        summary="Redeem the operator's upgrade code",
    )
    def post(self, request: Request, mailbox_id: str) -> Response:
        body = UpgradeRedeemSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        mailbox = services.mailbox_upgrade_redeem(
            actor=api_principal(request).actor,
            mailbox_id=mailbox_id,
            typed=TypedCode(code=body.validated_data["code"], client_ip=client_ip(request)),
            request_id=_request_id(request),
        )
        return Response({"status": "upgraded", "oversight_mode": mailbox.oversight_mode})


# --- The hosted approval page -----------------------------------------------------------------
#
# HTML under /v1/: the envelope middleware rewrites only 404, 405, 413, 415 and 5xx responses,
# so this page answers its own errors with statuses it leaves alone (410 for a link that no
# longer works, 400 for a malformed form, 403 for a refused send) and stays HTML.


def _page(request: HttpRequest, context: dict[str, Any], *, status: int = 200) -> HttpResponse:
    response = render(request, "oversight/approve.html", context, status=status)
    # The token is in the URL: keep it out of caches, Referer headers and search indexes.
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _review_context(email: Email, expires_at: Any, *, notice: str = "") -> dict[str, Any]:
    return {
        "state": "review",
        "email": email,
        "mailbox": email.mailbox,
        "outbound": email.direction == Direction.OUTBOUND,
        "body": email.text or email.markdown,
        # Its version is what the page decides on, never whatever the email is by then.
        "facts": decision_facts(email=email),
        "expires_at": expires_at,
        "notice": notice,
    }


def _gone(request: HttpRequest, email: Email | None = None) -> HttpResponse:
    if email is not None and email.approved_by is not None:
        decided = "rejected" if email.status == EmailStatus.REJECTED else "approved"
        return _page(
            request,
            {
                "state": decided,
                "heading": f"Already {decided}",
                "message": f"This email was already {decided}. Nothing more to do.",
                "email": email,
            },
            status=410,
        )
    return _page(
        request,
        {
            "state": "gone",
            "heading": "This link no longer works",
            "message": "The approval link is invalid, has expired (links last 7 days) or was "
            "already used, or the email is no longer waiting for a decision. Open the console "
            "to see the pending emails.",
        },
        status=410,
    )


def _replaced(request: HttpRequest, link: ApprovalLink) -> HttpResponse:
    """An earlier link of an email that changed: it decides nothing, and says which newer
    notification carries the link that does."""
    newest = selectors.approval_link_newest(link=link)
    notification = selectors.link_notification(link=newest)
    changed = ", ".join(notification.changed) if notification else "its content"
    message = (
        f"The email changed after this link was sent ({changed}), so this link decides "
        "nothing: approving it here would approve content you have not seen."
    )
    if notification is not None:
        message += (
            f" A new notification was sent to {notification.recipient} at "
            f"{notification.created_at:%Y-%m-%d %H:%M} UTC with the subject "
            f"“[MultiMail] {notification.subject}”: use the link in that email, or decide "
            "in the console."
        )
    return _page(
        request,
        {
            "state": "replaced",
            "heading": "This link was replaced",
            "message": message,
            "email": link.email,
        },
        status=410,
    )


# CSRF: the operator reaches this page from an email, usually without a console session, so
# there is no CSRF cookie to check. The token in the URL is itself the secret a forged
# cross-site request would need (256 random bits, emailed to the operator only, bound to one
# email, single use, expiring), so the usual CSRF check would add no protection here.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def approve_page(request: HttpRequest, token: str) -> HttpResponse:
    link = selectors.approval_link_find(token=token)
    if link is None:
        return _gone(request)
    email = link.email
    if email.status not in policy.PENDING_STATUSES:
        return _gone(request, email)
    if link.replaced_at is not None:
        return _replaced(request, link)
    if not link.is_usable(now=timezone.now()):
        return _gone(request, email)
    if request.method == "GET":
        # GET only shows: mail scanners prefetch links and must not decide anything.
        return _page(request, _review_context(email, link.expires_at))

    action = request.POST.get("action", "")
    version = request.POST.get("version", "")
    if action not in (services.Action.APPROVE, services.Action.REJECT) or not version:
        context = _review_context(email, link.expires_at)
        return _page(request, context, status=400)
    try:
        decision = services.approval_link_decide(
            token=token,
            action=action,
            version=version,
            reason=request.POST.get("reason", "").strip()[:2000],
        )
    except services.LinkUnusable:
        link.refresh_from_db()
        return _replaced(request, link) if link.replaced_at else _gone(request)
    except services.EmailChanged:
        email.refresh_from_db()
        notice = (
            "This email changed after this page was loaded, so nothing was decided. Below "
            "is the email as it is now: read it again before you decide."
        )
        return _page(request, _review_context(email, link.expires_at, notice=notice), status=409)
    except ApiError as error:
        email.refresh_from_db()
        if error.code in ("already_decided", "not_found"):
            return _gone(request, email)
        return _page(
            request,
            {"state": "error", "heading": "Not approved", "message": error.message, "email": email},
            status=error.status,
        )
    decided = "rejected" if decision.status == services.DecisionStatus.REJECTED else "approved"
    outcome = services.decision_outcome(decision=decision)
    return _page(
        request,
        {
            "state": decided if outcome.as_decided else "not-sent",
            "heading": decided.capitalize() if outcome.as_decided else "Approved, not sent",
            "message": outcome.message,
            "email": email,
        },
    )
