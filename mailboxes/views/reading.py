"""Reading mail: lists, one email, attachments, tags, cancel, threads, spam, contacts and
the suppression list. Thin views: parse, call a selector or service, render."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mailboxes import selectors
from mailboxes.filters import EmailFilter
from mailboxes.models import Attachment, Email, Mailbox
from mailboxes.serializers_reading import (
    AttachmentUrlSerializer,
    ContactCreateSerializer,
    ContactListResponseSerializer,
    ContactSerializer,
    DeletedSerializer,
    EmailCancelResponseSerializer,
    EmailListResponseSerializer,
    EmailResponseSerializer,
    EmailSummarySerializer,
    SpamActionResponseSerializer,
    SuppressionListResponseSerializer,
    SuppressionRemovedSerializer,
    SuppressionSerializer,
    TagDeletedSerializer,
    TagsSerializer,
    ThreadResponseSerializer,
)
from mailboxes.services.contacts import contact_create, contact_delete
from mailboxes.services.mailboxes import mailbox_get
from mailboxes.services.reading import (
    attachment_from_link,
    attachment_link,
    email_cancel,
    email_mark_read,
    email_tag_delete,
    email_tags_replace,
)
from mailboxes.services.spam import email_mark_not_spam, email_report_spam
from mailboxes.services.suppression import suppression_remove
from mailboxes.versions import email_version_read
from multimail.authentication import api_principal
from multimail.conditional import etag_response
from multimail.errors import ApiError
from multimail.exceptions import error_response, request_id_of
from multimail.pagination import pagination_parameters
from oversight.policy import agent_can_read_content


def _mailbox(request: Request, mailbox_id: str) -> Mailbox:
    return mailbox_get(account=api_principal(request).account, mailbox_id=mailbox_id)


def _email(request: Request, mailbox_id: str, email_id: str) -> Email:
    return selectors.mailbox_email_get(
        account=api_principal(request).account, mailbox_id=mailbox_id, email_id=email_id
    )


def _attachment_response(attachment: Attachment) -> HttpResponse:
    response = HttpResponse(bytes(attachment.content), content_type=attachment.content_type)
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=attachment.filename
    )
    response["Content-Length"] = str(attachment.size)
    # Received files are untrusted: never let a browser sniff them into HTML.
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


class EmailListView(APIView):
    required_scopes = {"GET": "read"}
    # The selector applies the filter; these two only document it (multimail.openapi).
    filterset_class = EmailFilter
    queryset = Email.objects.none()

    @extend_schema(
        operation_id="emails_list",
        parameters=pagination_parameters(20),
        responses=EmailListResponseSerializer,
    )
    def get(self, request: Request, mailbox_id: str) -> Response:
        page = selectors.mailbox_email_list(
            account=api_principal(request).account,
            mailbox_id=mailbox_id,
            params=request.query_params,
        )
        return Response(
            {
                "emails": EmailSummarySerializer(page.items, many=True).data,
                "cursor": page.next_cursor,
            }
        )


class EmailDetailView(APIView):
    required_scopes = {"GET": "read"}

    @extend_schema(operation_id="emails_read", responses=EmailResponseSerializer)
    def get(self, request: Request, mailbox_id: str, email_id: str) -> Response:
        email = _email(request, mailbox_id, email_id)
        email = email_mark_read(email=email)
        data = EmailResponseSerializer(
            email,
            context={
                "content_readable": agent_can_read_content(email),
                "attachments": selectors.email_attachments(email=email),
                "version": email_version_read(email=email),
            },
        ).data
        return etag_response(request, data)


class AttachmentDownloadView(APIView):
    required_scopes = {"GET": "read"}

    @extend_schema(
        operation_id="emails_attachment_download",
        responses={(200, "application/octet-stream"): bytes},
    )
    def get(self, request: Request, mailbox_id: str, email_id: str, filename: str) -> HttpResponse:
        email = _email(request, mailbox_id, email_id)
        return _attachment_response(selectors.attachment_get(email=email, filename=filename))


class AttachmentUrlView(APIView):
    required_scopes = {"GET": "read"}

    @extend_schema(operation_id="emails_attachment_url", responses=AttachmentUrlSerializer)
    def get(self, request: Request, mailbox_id: str, email_id: str, filename: str) -> Response:
        email = _email(request, mailbox_id, email_id)
        attachment = selectors.attachment_get(email=email, filename=filename)
        link = attachment_link(attachment=attachment)
        return Response(
            {
                "url": link.url,
                "filename": attachment.filename,
                "size_bytes": attachment.size,
                "content_type": attachment.content_type,
                "expires_in": link.expires_in,
            }
        )


@require_GET
def attachment_link_download(request: HttpRequest, token: str) -> HttpResponse:
    """The public side of ``.../url``: no API key, the signed token is the credential."""
    try:
        attachment = attachment_from_link(token=token)
    except ApiError as error:  # outside /v1/ nothing renders it for us
        return error_response(request, error)
    return _attachment_response(attachment)


class EmailTagsView(APIView):
    required_scopes = {"GET": "read", "PUT": "send"}

    @extend_schema(operation_id="emails_tags_get", responses=TagsSerializer)
    def get(self, request: Request, mailbox_id: str, email_id: str) -> Response:
        email = _email(request, mailbox_id, email_id)
        return Response({"tags": email.tags})

    @extend_schema(
        operation_id="emails_tags_replace", request=TagsSerializer, responses=TagsSerializer
    )
    def put(self, request: Request, mailbox_id: str, email_id: str) -> Response:
        serializer = TagsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        email = _email(request, mailbox_id, email_id)
        tags = email_tags_replace(email=email, tags=serializer.validated_data["tags"])
        return Response({"tags": tags})


class EmailTagDeleteView(APIView):
    required_scopes = {"DELETE": "send"}

    @extend_schema(operation_id="emails_tags_delete", responses={200: TagDeletedSerializer})
    def delete(self, request: Request, mailbox_id: str, email_id: str, key: str) -> Response:
        email = _email(request, mailbox_id, email_id)
        return Response({"deleted": email_tag_delete(email=email, key=key)})


class EmailCancelView(APIView):
    required_scopes = {"POST": "send"}

    @extend_schema(
        operation_id="emails_cancel", request=None, responses=EmailCancelResponseSerializer
    )
    def post(self, request: Request, mailbox_id: str, email_id: str) -> Response:
        email = email_cancel(mailbox=_mailbox(request, mailbox_id), email_id=email_id)
        return Response({"id": email.pk, "status": email.status})


class ThreadView(APIView):
    required_scopes = {"GET": "read"}

    @extend_schema(operation_id="threads_get", responses=ThreadResponseSerializer)
    def get(self, request: Request, mailbox_id: str, thread_id: str) -> Response:
        thread = selectors.thread_get(mailbox=_mailbox(request, mailbox_id), thread_id=thread_id)
        data = ThreadResponseSerializer(
            {
                "thread_id": thread.thread_id,
                "message_count": len(thread.emails),
                "participants": thread.participants,
                "last_activity": thread.last_activity,
                "has_unanswered_inbound": thread.has_unanswered_inbound,
                "emails": thread.emails,
            }
        ).data
        return etag_response(request, data)


class SpamListView(APIView):
    required_scopes = {"GET": "read"}

    @extend_schema(
        operation_id="spam_list",
        parameters=[
            OpenApiParameter("status", str, enum=["spam_flagged", "spam_quarantined"]),
            *pagination_parameters(20),
        ],
        responses=EmailListResponseSerializer,
    )
    def get(self, request: Request) -> Response:
        page = selectors.spam_list(
            account=api_principal(request).account, params=request.query_params
        )
        return Response(
            {
                "emails": EmailSummarySerializer(page.items, many=True).data,
                "cursor": page.next_cursor,
            }
        )


def _spam_action(email: Any) -> Response:
    return Response({"id": email.pk, "status": email.status, "user_label": email.user_label})


class ReportSpamView(APIView):
    required_scopes = {"POST": "send"}

    @extend_schema(operation_id="spam_report", request=None, responses=SpamActionResponseSerializer)
    def post(self, request: Request, email_id: str) -> Response:
        return _spam_action(
            email_report_spam(account=api_principal(request).account, email_id=email_id)
        )


class NotSpamView(APIView):
    required_scopes = {"POST": "send"}

    @extend_schema(
        operation_id="spam_not_spam", request=None, responses=SpamActionResponseSerializer
    )
    def post(self, request: Request, email_id: str) -> Response:
        return _spam_action(
            email_mark_not_spam(account=api_principal(request).account, email_id=email_id)
        )


class ContactsView(APIView):
    required_scopes = {"GET": "read", "POST": "send"}

    @extend_schema(
        operation_id="contacts_list",
        parameters=[
            OpenApiParameter("q", str, description="Partial match on name or email"),
            *pagination_parameters(50),
        ],
        responses=ContactListResponseSerializer,
    )
    def get(self, request: Request) -> Response:
        page = selectors.contact_list(
            account=api_principal(request).account, params=request.query_params
        )
        return Response(
            {"contacts": ContactSerializer(page.items, many=True).data, "cursor": page.next_cursor}
        )

    @extend_schema(
        operation_id="contacts_create",
        request=ContactCreateSerializer,
        responses={201: ContactSerializer},
    )
    def post(self, request: Request) -> Response:
        serializer = ContactCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        contact = contact_create(
            account=api_principal(request).account, **serializer.validated_data
        )
        return Response(ContactSerializer(contact).data, status=201)


class ContactDetailView(APIView):
    required_scopes = {"DELETE": "admin"}

    @extend_schema(operation_id="contacts_delete", responses={200: DeletedSerializer})
    def delete(self, request: Request, contact_id: str) -> Response:
        deleted = contact_delete(
            actor=api_principal(request).actor,
            contact_id=contact_id,
            request_id=request_id_of(request),
        )
        return Response({"deleted": deleted})


class SuppressionListView(APIView):
    required_scopes = {"GET": "admin"}

    @extend_schema(
        operation_id="suppression_list",
        parameters=pagination_parameters(50),
        responses=SuppressionListResponseSerializer,
    )
    def get(self, request: Request) -> Response:
        page = selectors.suppression_list(
            account=api_principal(request).account, params=request.query_params
        )
        return Response(
            {
                "suppressions": SuppressionSerializer(page.items, many=True).data,
                "cursor": page.next_cursor,
            }
        )


class SuppressionDetailView(APIView):
    required_scopes = {"DELETE": "admin"}

    @extend_schema(operation_id="suppression_remove", responses={200: SuppressionRemovedSerializer})
    def delete(self, request: Request, address: str) -> Response:
        suppression_remove(
            actor=api_principal(request).actor, address=address, request_id=request_id_of(request)
        )
        return Response({"deleted": True, "email_address": address.strip().lower()})
