"""The error registry: every code the API can answer, with its status and retry policy.

Services raise ``ApiError("code", ...)``; the DRF exception handler and the middleware for
non-DRF paths render it in the envelope of the error contract. ``/docs/errors`` is rendered
from ``REGISTRY`` so a code cannot be raised without being documented.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ErrorCode:
    code: str
    status: int
    title: str
    cause: str
    fix: str
    retryable: bool | None = None  # None: the default policy for the status
    extra_keys: tuple[str, ...] = ()

    @property
    def is_retryable(self) -> bool:
        if self.retryable is not None:
            return self.retryable
        return self.status == 429 or self.status >= 500


_CODES = [
    ErrorCode(
        "authentication_required",
        401,
        "Authentication required",
        "No Authorization: Bearer or X-API-Key header was sent, or it is malformed.",
        "Send Authorization: Bearer mm_live_YOUR_KEY (or X-API-Key: mm_live_YOUR_KEY).",
    ),
    ErrorCode(
        "invalid_api_key",
        401,
        "Invalid API key",
        "The API key is well formed but does not exist or has been revoked.",
        "Create a new key with POST /v1/api-keys, or check your keys with GET /v1/api-keys.",
    ),
    ErrorCode(
        "webhook_unauthorized",
        401,
        "Webhook unauthorized",
        "A provider webhook arrived without valid HTTP Basic credentials.",
        "Configure the provider's webhook URL with the credentials in POSTMARK_WEBHOOK_SECRET.",
    ),
    ErrorCode(
        "webhook_signature_missing",
        400,
        "Webhook signature missing",
        "A Stripe webhook arrived without the Stripe-Signature header.",
        "Point Stripe at this endpoint with webhook signing configured.",
    ),
    ErrorCode(
        "webhook_signature_invalid",
        400,
        "Webhook signature invalid",
        "The Stripe signature does not verify, or its timestamp is outside the tolerance.",
        "Check STRIPE_WEBHOOK_SECRET matches the endpoint's signing secret in Stripe.",
    ),
    ErrorCode(
        "insufficient_permissions",
        403,
        "Insufficient permissions",
        "The API key lacks the scope this operation needs.",
        "Use a key with the scope named in required_scope (admin includes read; oversight "
        "includes oversight_read), or create one with POST /v1/api-keys.",
        extra_keys=("required_scope",),
    ),
    ErrorCode(
        "account_not_activated",
        403,
        "Account not activated",
        "The operator has not yet entered the activation code sent to the oversight email.",
        "Ask the operator to enter the code at /confirm, or call "
        "POST /v1/account/resend-confirmation.",
    ),
    ErrorCode(
        "account_deactivated",
        403,
        "Account deactivated",
        "The account was deactivated (enforcement action or unpaid subscription).",
        "Check the oversight email for the notice and contact support for reactivation.",
        extra_keys=("reason",),
    ),
    ErrorCode(
        "sending_disabled",
        403,
        "Sending disabled",
        "Sending was disabled by an enforcement action (bounce rate, complaints, or manual).",
        "Read the reason, fix its cause, and contact support to re-enable sending.",
        extra_keys=("reason",),
    ),
    ErrorCode(
        "mailbox_read_only",
        403,
        "Mailbox is read-only",
        "The mailbox's oversight mode is read_only, which blocks all outbound email.",
        "Request an upgrade with POST /v1/mailboxes/{id}/request-upgrade; the path is "
        "gated_all > gated_send > monitored > autonomous.",
        extra_keys=("upgrade_path",),
    ),
    ErrorCode(
        "plan_feature_unavailable",
        403,
        "Plan feature unavailable",
        "This feature is not part of the account's plan (custom domains need Pro or Scale).",
        "Upgrade with POST /v1/billing/checkout to one of required_plans.",
        extra_keys=("plan", "required_plans"),
    ),
    ErrorCode(
        "region_blocked",
        451,
        "Region blocked",
        "The request comes from a region under OFAC sanctions.",
        "MultiMail is not available in sanctioned regions under US export regulations.",
    ),
    ErrorCode(
        "missing_parameter",
        400,
        "Missing parameter",
        "A required field is absent or empty.",
        "Include the field named in param.",
    ),
    ErrorCode(
        "invalid_parameter",
        400,
        "Invalid parameter",
        "A field is malformed: wrong format, unknown value, or bad JSON.",
        "Correct the field named in param; errors lists every problem at once.",
        extra_keys=("errors",),
    ),
    ErrorCode(
        "validation_error",
        422,
        "Validation error",
        "The request is well formed but breaks a rule (a false acceptance, send together "
        "with oversight on one key, a send_at in the past, a wrong or expired code).",
        "Read message and errors, change the request, and send it again.",
        extra_keys=("errors",),
    ),
    ErrorCode(
        "recipient_suppressed",
        422,
        "Recipient suppressed",
        "A recipient bounced, complained or unsubscribed before and is on the suppression list.",
        "Check GET /v1/suppression; remove non-bounce entries with "
        "DELETE /v1/suppression/{address}.",
        extra_keys=("suppressed",),
    ),
    ErrorCode(
        "content_rejected",
        422,
        "Content rejected",
        "The outbound content filter flagged the email (phishing pattern, prohibited MIME "
        "type, executable attachment).",
        "Read reason, change the content, and send again. See the acceptable use policy.",
        extra_keys=("reason",),
    ),
    ErrorCode(
        "payload_too_large",
        413,
        "Payload too large",
        "The request body is over the server limit, or attachments exceed 10 MB combined.",
        "Send smaller attachments or fewer per email; limit_bytes is the cap.",
        extra_keys=("limit_bytes",),
    ),
    ErrorCode(
        "unsupported_media_type",
        415,
        "Unsupported media type",
        "The body is not application/json on a JSON endpoint.",
        "Send Content-Type: application/json with a JSON body.",
    ),
    ErrorCode(
        "method_not_allowed",
        405,
        "Method not allowed",
        "This path does not support the HTTP method used.",
        "Use one of the methods in allowed.",
        extra_keys=("allowed",),
    ),
    ErrorCode(
        "not_found",
        404,
        "Not found",
        "The resource does not exist, was deleted, or belongs to another tenant.",
        "List the resources of that kind (resource names it) to find valid ids.",
        extra_keys=("resource",),
    ),
    ErrorCode(
        "conflict",
        409,
        "Conflict",
        "The resource's current state forbids this change (for example a stale If-Match).",
        "Fetch the resource again, reconcile, and retry.",
    ),
    ErrorCode(
        "address_taken",
        409,
        "Address taken",
        "Another mailbox already uses this address (deleted mailboxes keep theirs).",
        "Choose a different address_local.",
    ),
    ErrorCode(
        "slug_taken",
        409,
        "Slug taken",
        "Another tenant holds this slug.",
        "Use one of suggestions, or choose another name.",
        extra_keys=("suggestions",),
    ),
    ErrorCode(
        "slug_reserved",
        409,
        "Slug reserved",
        "The slug is a reserved name (admin, api, mail, support, www, ...).",
        "Use one of suggestions, or choose another operator name.",
        extra_keys=("suggestions",),
    ),
    ErrorCode(
        "domain_taken",
        409,
        "Domain taken",
        "This custom domain is registered by another tenant.",
        "Verify you own the domain and contact support if it was registered in error.",
    ),
    ErrorCode(
        "already_decided",
        409,
        "Already decided",
        "The email was already approved or rejected (concurrent decisions: one wins).",
        "No action needed; status says how it was decided.",
        extra_keys=("status",),
    ),
    ErrorCode(
        "duplicate_email",
        409,
        "Duplicate email",
        "An identical email (recipients, subject, body) left this mailbox in the last 60 s.",
        "Wait 60 seconds, or pass idempotency_key for intentional retries.",
        extra_keys=("original_id",),
    ),
    ErrorCode(
        "not_cancellable",
        409,
        "Not cancellable",
        "Only emails in pending_scan, scheduled, pending_send_approval or "
        "pending_inbound_approval can be cancelled.",
        "Check the email's status; sent or decided emails cannot be cancelled.",
        extra_keys=("status",),
    ),
    ErrorCode(
        "suppression_permanent",
        409,
        "Suppression permanent",
        "This suppression comes from a hard bounce: the address is permanently invalid.",
        "Hard-bounce suppressions protect your sender reputation and cannot be removed.",
    ),
    ErrorCode(
        "limit_exceeded",
        409,
        "Limit exceeded",
        "The plan's limit on this resource count is reached (mailboxes: Starter 2, "
        "Builder 5, Pro 25, Scale 100; also webhooks, keys, domains).",
        "Upgrade with POST /v1/billing/checkout, or delete unused resources.",
        extra_keys=("limit", "plan"),
    ),
    ErrorCode(
        "idempotency_conflict",
        409,
        "Idempotency conflict",
        "The Idempotency-Key is in use by a request still in flight, or was used with a "
        "different body.",
        "Wait for the in-flight request to finish, or use a fresh key for a new request.",
        retryable=False,
    ),
    ErrorCode(
        "payment_pending",
        409,
        "Payment pending",
        "The billing session key was asked for before the payment was processed.",
        "Wait for payment processing to complete, then retry.",
        retryable=True,
    ),
    ErrorCode(
        "rate_limit_exceeded",
        429,
        "Rate limit exceeded",
        "Too many requests (separate read and send budgets, plus per-endpoint limits).",
        "Wait the seconds in Retry-After and back off exponentially.",
        extra_keys=("limit_type",),
    ),
    ErrorCode(
        "monthly_quota_exceeded",
        429,
        "Monthly quota exceeded",
        "The plan's monthly sends are used up.",
        "Upgrade the plan for a higher quota, or wait until resets_at. See GET /v1/usage.",
        extra_keys=("quota", "used", "resets_at"),
    ),
    ErrorCode(
        "warmup_limit_exceeded",
        429,
        "Warm-up limit exceeded",
        "The new mailbox hit today's warm-up cap; caps rise over its first 7 days.",
        "Wait until midnight UTC (Retry-After). X-Warmup-Stage and X-Warmup-Daily-Limit "
        "give the stage and cap.",
        extra_keys=("warmup_stage", "daily_sent", "daily_limit"),
    ),
    ErrorCode(
        "storage_quota_exceeded",
        429,
        "Storage quota exceeded",
        "Stored bodies and attachments reached the plan's storage limit.",
        "Upgrade the plan or delete old emails to free storage.",
        retryable=False,
        extra_keys=("used_bytes", "limit_bytes"),
    ),
    ErrorCode(
        "too_many_attempts",
        429,
        "Too many attempts",
        "Too many wrong codes were entered from this IP address, or for this code's "
        "target, in the last hour.",
        "Wait the seconds in Retry-After and try again with the correct code.",
    ),
    ErrorCode(
        "confirmation_recently_sent",
        429,
        "Confirmation recently sent",
        "A confirmation email was sent in the last 5 minutes.",
        "Wait 5 minutes before requesting another one.",
    ),
    ErrorCode(
        "internal_error",
        500,
        "Internal error",
        "An unhandled error occurred. It was logged with the request id.",
        "Retry the request; if it persists, contact support with the request_id.",
    ),
    ErrorCode(
        "server_misconfigured",
        500,
        "Server misconfigured",
        "A required secret (Postmark webhook secret, Stripe keys) is missing from the "
        "server's environment.",
        "This is a server configuration issue: the operator of this server must set it.",
        retryable=False,
    ),
    ErrorCode(
        "upstream_error",
        502,
        "Upstream error",
        "A provider this request depends on failed: Stripe, Postmark, or DNS.",
        "Retry after a short wait; provider names which one failed.",
        extra_keys=("provider",),
    ),
    ErrorCode(
        "service_unavailable",
        503,
        "Service unavailable",
        "The database, broker or cache is unreachable.",
        "Retry after the seconds in Retry-After with exponential backoff.",
    ),
]

REGISTRY: dict[str, ErrorCode] = {entry.code: entry for entry in _CODES}


class ApiError(Exception):
    """An error the API answers with the envelope. ``code`` must be in ``REGISTRY``.

    ``extra`` holds the catalog's extra keys (``resource``, ``required_scope``, ...);
    ``headers`` are added to the response (``Retry-After``, warm-up headers).
    """

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        param: str | None = None,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        if code not in REGISTRY:
            raise KeyError(f"error code {code!r} is not in the registry")
        self.entry = REGISTRY[code]
        self.code = code
        self.message = message or f"{self.entry.cause} {self.entry.fix}"
        self.param = param if param is not None else (errors[0]["field"] if errors else None)
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra
        super().__init__(self.message)

    @property
    def status(self) -> int:
        return self.entry.status


def not_found(resource: str, message: str | None = None) -> ApiError:
    return ApiError(
        "not_found",
        message or f"That {resource.replace('_', ' ')} does not exist in this account.",
        resource=resource,
    )
