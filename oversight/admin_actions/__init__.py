"""Admin actions an agent's API key may do only with the operator's approval.

Every gated action is declared once, in ``table.py``: its name, its typed parameters, the
check of its whole input, when it needs the operator, the summary the operator reads, and
the function that carries it out (a service of the app that owns the resource). ``base.py``
holds the shapes, ``gate.py`` the machinery below. This package is the one entry point.

An API view calls ``admin_action_run`` and nothing else:

1. the action's check runs first: a request that cannot succeed is refused with its catalog
   error at once, and no operator is asked to approve it;
2. an operator (console, support), an account with approvals turned off (unless the action
   grants autonomy, like loosening oversight rules: ``even_without_approvals``), or a call
   the action's predicate finds harmless: the action runs now;
3. with ``approval_code``: the code must have been issued for this exact action and these
   parameters; it is used up and the action runs, or ``validation_error``;
4. otherwise the request is recorded, the operator is emailed a code, and the view gets a
   ``PendingApproval`` to render as 202.

The operator may instead approve in the console: ``admin_action_approve`` runs the same
table entry on the parameters stored with the request.
"""

from __future__ import annotations

from oversight.admin_actions.base import ActionParams, AdminAction, PendingApproval
from oversight.admin_actions.gate import (
    admin_action_approve,
    admin_action_deny,
    admin_action_run,
    admin_action_summary,
)
from oversight.admin_actions.table import (
    ACCOUNT_DELETE,
    ACCOUNT_UPDATE,
    ACTIONS,
    API_KEY_CREATE,
    API_KEY_REVOKE,
    API_KEY_UPDATE,
    BILLING_CANCEL,
    MAILBOX_CREATE,
    MAILBOX_RULES_REPLACE,
    MAILBOX_UPDATE,
    SENDING_RESUME,
    WEBHOOK_CREATE,
    AccountDelete,
    AccountUpdate,
    ApiKeyCreate,
    ApiKeyRevoke,
    ApiKeyUpdate,
    BillingCancel,
    MailboxCreate,
    MailboxRulesReplace,
    MailboxUpdate,
    SendingResume,
    WebhookCreate,
)

__all__ = [
    "ACCOUNT_DELETE",
    "ACCOUNT_UPDATE",
    "ACTIONS",
    "API_KEY_CREATE",
    "API_KEY_REVOKE",
    "API_KEY_UPDATE",
    "BILLING_CANCEL",
    "MAILBOX_CREATE",
    "MAILBOX_RULES_REPLACE",
    "MAILBOX_UPDATE",
    "SENDING_RESUME",
    "WEBHOOK_CREATE",
    "AccountDelete",
    "AccountUpdate",
    "ActionParams",
    "AdminAction",
    "ApiKeyCreate",
    "ApiKeyRevoke",
    "ApiKeyUpdate",
    "BillingCancel",
    "MailboxCreate",
    "MailboxRulesReplace",
    "MailboxUpdate",
    "PendingApproval",
    "SendingResume",
    "WebhookCreate",
    "admin_action_approve",
    "admin_action_deny",
    "admin_action_run",
    "admin_action_summary",
]
