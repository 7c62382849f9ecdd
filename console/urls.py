"""The operator console (HTML) and the activation page."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path
from django.views.generic import RedirectView

from console.views import account, approvals, audit, auth, mailboxes, queue, rules, settings

urlpatterns: list[URLPattern | URLResolver] = [
    path("confirm", account.confirm, name="console-confirm"),
    path("welcome", account.welcome, name="console-welcome"),
    path("console", RedirectView.as_view(pattern_name="console-queue", permanent=False)),
    path("console/", queue.queue, name="console-queue"),
    path("console/queue", queue.queue),
    path("console/approval-expiry", queue.approval_expiry_view, name="console-approval-expiry"),
    path("console/sending/stop", queue.sending_stop_view, name="console-sending-stop"),
    path("console/sending/resume", queue.sending_resume_view, name="console-sending-resume"),
    path("console/queue/batch", queue.batch_decide, name="console-batch-decide"),
    path("console/counts", queue.counts, name="console-counts"),
    path("console/queue/<str:email_id>", queue.queue_item, name="console-queue-item"),
    path("console/queue/<str:email_id>/decide", queue.decide, name="console-decide"),
    path("console/login", auth.login_start, name="console-login"),
    path("console/login/verify", auth.login_verify, name="console-login-verify"),
    path("console/logout", auth.logout_view, name="console-logout"),
    path("console/switch", auth.switch_account, name="console-switch"),
    path("console/operators", auth.operators, name="console-operators"),
    path(
        "console/operators/<str:operator_id>/sign-out",
        auth.operator_sign_out_view,
        name="console-operator-sign-out",
    ),
    path(
        "console/operators/<str:operator_id>/remove",
        auth.operator_remove_view,
        name="console-operator-remove",
    ),
    path(
        "console/oversight-email/confirm",
        account.oversight_email_confirm,
        name="console-oversight-email-confirm",
    ),
    path(
        "console/oversight-email/undo",
        account.oversight_email_undo,
        name="console-oversight-email-undo",
    ),
    path("console/account", account.account_settings, name="console-account"),
    path(
        "console/account/oversight-email",
        account.account_oversight_email,
        name="console-account-email",
    ),
    path("console/account/export", account.account_export_view, name="console-account-export"),
    path("console/account/delete", account.account_delete_view, name="console-account-delete"),
    path("console/approvals", approvals.approvals, name="console-approvals"),
    path(
        "console/approvals/<str:request_pk>",
        approvals.approval_decide,
        name="console-approval-decide",
    ),
    path("console/keys", account.api_keys, name="console-keys"),
    path(
        "console/keys/<str:key_id>/revoke", account.api_key_revoke_view, name="console-key-revoke"
    ),
    path("console/audit", audit.audit_log, name="console-audit"),
    path("console/audit.csv", audit.audit_export, name="console-audit-export"),
    path("console/mailboxes", mailboxes.mailbox_list, name="console-mailboxes"),
    path("console/mailboxes/<str:mailbox_id>", mailboxes.mailbox_detail, name="console-mailbox"),
    path(
        "console/mailboxes/<str:mailbox_id>/mode",
        mailboxes.mailbox_mode,
        name="console-mailbox-mode",
    ),
    path(
        "console/mailboxes/<str:mailbox_id>/delete",
        mailboxes.mailbox_delete_view,
        name="console-mailbox-delete",
    ),
    path(
        "console/mailboxes/<str:mailbox_id>/rules",
        rules.rules_page,
        name="console-mailbox-rules",
    ),
    path(
        "console/mailboxes/<str:mailbox_id>/rules/save",
        rules.rules_save,
        name="console-mailbox-rules-save",
    ),
    path(
        "console/mailboxes/<str:mailbox_id>/settings",
        mailboxes.mailbox_settings,
        name="console-mailbox-settings",
    ),
    path(
        "console/mailboxes/<str:mailbox_id>/emails/<str:email_id>",
        mailboxes.email_detail,
        name="console-email",
    ),
    path(
        "console/mailboxes/<str:mailbox_id>/emails/<str:email_id>/source",
        mailboxes.email_source,
        name="console-email-source",
    ),
    path(
        "console/mailboxes/<str:mailbox_id>/emails/<str:email_id>/retry",
        mailboxes.email_retry_view,
        name="console-email-retry",
    ),
    path(
        "console/mailboxes/<str:mailbox_id>/emails/<str:email_id>/attachments/<path:filename>",
        mailboxes.attachment_download,
        name="console-attachment",
    ),
    path(
        "console/mailboxes/<str:mailbox_id>/threads/<str:thread_id>",
        mailboxes.thread_detail,
        name="console-thread",
    ),
    path("console/domains", settings.domains, name="console-domains"),
    path("console/domains/<str:domain_id>", settings.domain_detail, name="console-domain"),
    path(
        "console/domains/<str:domain_id>/verify",
        settings.domain_verify_view,
        name="console-domain-verify",
    ),
    path(
        "console/domains/<str:domain_id>/delete",
        settings.domain_delete_view,
        name="console-domain-delete",
    ),
    path("console/webhooks", settings.webhooks, name="console-webhooks"),
    path("console/webhooks/<str:webhook_id>", settings.webhook_detail, name="console-webhook"),
    path(
        "console/webhooks/<str:webhook_id>/action",
        settings.webhook_action,
        name="console-webhook-action",
    ),
    path(
        "console/webhooks/<str:webhook_id>/deliveries/<str:delivery_id>",
        settings.delivery_detail,
        name="console-webhook-delivery",
    ),
    path(
        "console/webhooks/<str:webhook_id>/deliveries/<str:delivery_id>/replay",
        settings.delivery_replay,
        name="console-delivery-replay",
    ),
    path("console/suppression", settings.suppression, name="console-suppression"),
    path(
        "console/suppression/remove",
        settings.suppression_remove_view,
        name="console-suppression-remove",
    ),
    path("console/usage", settings.usage, name="console-usage"),
    path("console/billing", settings.billing, name="console-billing"),
    path("console/billing/action", settings.billing_action, name="console-billing-action"),
]
