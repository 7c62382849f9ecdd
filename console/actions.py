"""Admin actions from the console: the API's gated actions, run as the signed-in operator.

The console calls the same table entry (``oversight.admin_actions``) as the API, so the
checks, limits, errors and audit entries are the API's. The gate never holds an operator's
own action for approval: it runs at once.
"""

from __future__ import annotations

from console.access import ConsoleRequest
from multimail.exceptions import request_id_of
from oversight.admin_actions import ActionParams, AdminAction, PendingApproval, admin_action_run


def operator_action_run[P: ActionParams, R](
    request: ConsoleRequest, action: AdminAction[P, R], params: P
) -> R:
    outcome = admin_action_run(
        actor=request.actor,
        action=action,
        params=params,
        approval_code=None,
        request_id=request_id_of(request),
    )
    if isinstance(outcome, PendingApproval):
        # Only an agent's key is asked for a code; reaching here is a bug in the gate.
        raise RuntimeError(f"{action.name} by an operator waited for approval")
    return outcome
