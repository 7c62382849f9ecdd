"""Console forms: input parsing only; the rules live in the services they feed."""

from __future__ import annotations

import json
from typing import Any, cast

from django import forms

from accounts.models import Scope
from accounts.plans import PAID_PLANS
from accounts.serializers import MAX_APPROVAL_EXPIRY_HOURS
from billing.models import BillingInterval
from mailboxes.models import GateTiming, Mailbox, OversightMode
from mailboxes.services.suppression import OPERATOR_REASONS
from multimail.addresses import address_validator
from multimail.header_fields import header_text_validator
from oversight.admin_actions.gate import DENY_REASON_MAX

# A checkbox on its label's line. In the app's templates/: the form renderer looks there.
CHECKBOX_FIELD = "console/forms/checkbox_field.html"


class LoginEmailForm(forms.Form):
    email = forms.EmailField(
        label="Email address",
        max_length=320,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
        help_text="The account's oversight email, or the address you were invited with.",
    )
    next = forms.CharField(required=False, widget=forms.HiddenInput, max_length=2000)


class LoginCodeForm(forms.Form):
    email = forms.EmailField(
        label="Email address",
        max_length=320,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    code = forms.CharField(
        label="Sign-in code",
        max_length=16,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false"}
        ),
        help_text="From the email we sent, for example SKP-7D2-4V8.",
    )
    next = forms.CharField(required=False, widget=forms.HiddenInput, max_length=2000)


class InviteForm(forms.Form):
    email = forms.EmailField(label="Email address", max_length=320, validators=[address_validator])
    name = forms.CharField(label="Name", max_length=200, required=False)


class WelcomeForm(forms.Form):
    session_id = forms.CharField(max_length=255, widget=forms.HiddenInput)


class ConfirmForm(forms.Form):
    code = forms.CharField(
        label="Activation code",
        max_length=16,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "spellcheck": "false"}),
        help_text="From the activation email, for example SKP-7D2-4V8.",
    )


class ModeForm(forms.Form):
    mode = forms.ChoiceField(label="Oversight mode", choices=OversightMode.choices)


class ApiKeyForm(forms.Form):
    name = forms.CharField(label="Name", max_length=200)
    scopes = forms.MultipleChoiceField(
        label="Scopes",
        choices=Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=["read"],
        help_text="A key cannot hold both send and oversight: an agent must not approve "
        "its own mail.",
    )


class DomainForm(forms.Form):
    domain = forms.CharField(label="Domain", max_length=253, help_text="e.g. mail.example.com")


class WebhookForm(forms.Form):
    url = forms.URLField(label="URL (https)", max_length=2000)
    events = forms.MultipleChoiceField(
        label="Events", widget=forms.CheckboxSelectMultiple, choices=()
    )

    def __init__(self, *args: Any, event_choices: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.MultipleChoiceField, self.fields["events"]).choices = event_choices


class MailboxSettingsForm(forms.Form):
    display_name = forms.CharField(
        label="Display name", required=False, max_length=200, validators=[header_text_validator]
    )
    signature_block = forms.CharField(label="Signature", required=False, max_length=200)
    auto_cc = forms.EmailField(
        label="Always Cc", required=False, max_length=320, validators=[address_validator]
    )
    auto_bcc = forms.EmailField(
        label="Always Bcc", required=False, max_length=320, validators=[address_validator]
    )
    forward_inbound = forms.BooleanField(
        label="Forward inbound mail", required=False, template_name=CHECKBOX_FIELD
    )
    ai_disclosure = forms.BooleanField(
        label="Add an AI disclosure line", required=False, template_name=CHECKBOX_FIELD
    )
    scheduling_enabled = forms.BooleanField(
        label="Allow scheduled sends", required=False, template_name=CHECKBOX_FIELD
    )
    default_gate_timing = forms.ChoiceField(
        label="Scheduled mail in gated modes", choices=GateTiming.choices
    )
    webhook_url = forms.URLField(
        label="Webhook URL",
        required=False,
        max_length=2000,
        help_text="Receives this mailbox's events (new mail, sends, bounces).",
    )
    oversight_webhook_url = forms.URLField(
        label="Oversight webhook URL",
        required=False,
        max_length=2000,
        help_text="Receives only its oversight events: mail held for you, decisions.",
    )

    def __init__(self, *args: Any, instance_values: Mailbox, **kwargs: Any) -> None:
        kwargs.setdefault(
            "initial", {name: getattr(instance_values, name) for name in self.base_fields}
        )
        super().__init__(*args, **kwargs)

    def changes(self) -> dict[str, Any]:
        """Cleaned values as the mailbox service expects them (empty optional text: None)."""
        data = dict(self.cleaned_data)
        for name in (
            "auto_cc",
            "auto_bcc",
            "webhook_url",
            "oversight_webhook_url",
            "signature_block",
        ):
            data[name] = data[name] or None
        return data


class MailboxCreateForm(forms.Form):
    """The fields of POST /v1/mailboxes; the mailbox service checks the address and limits."""

    address_local = forms.CharField(
        label="Address",
        max_length=320,
        validators=[header_text_validator],
        help_text="The part before the @ (the account's domain is added), or a full address "
        "at one of your verified domains.",
    )
    display_name = forms.CharField(
        label="Display name", required=False, max_length=200, validators=[header_text_validator]
    )
    webhook_url = forms.URLField(label="Webhook URL", required=False, max_length=2000)
    ai_disclosure = forms.BooleanField(
        label="Add an AI disclosure line", required=False, template_name=CHECKBOX_FIELD
    )


class OversightEmailForm(forms.Form):
    oversight_email = forms.EmailField(
        label="New oversight email",
        max_length=320,
        validators=[address_validator],
        help_text="It receives a confirmation link; nothing changes until it is followed.",
    )


class AccountDeleteForm(forms.Form):
    account_name = forms.CharField(label="Type the account's name", max_length=200)


class CheckoutForm(forms.Form):
    plan = forms.ChoiceField(label="Plan", choices=[(plan, plan) for plan in PAID_PLANS])
    interval = forms.ChoiceField(label="Billing interval", choices=BillingInterval.choices)


class RulesForm(forms.Form):
    """A mailbox's oversight rules as JSON (the API's list); each rule is checked by the
    service, which names the bad rule's index and field."""

    rules = forms.CharField(
        label="Rules (JSON)",
        max_length=200_000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 16, "spellcheck": "false", "class": "code"}),
        help_text='A list, first match wins: [{"name": "strangers", "direction": "outbound", '
        '"match": {"first_contact": true}, "action": "hold"}]',
    )

    def clean_rules(self) -> list[Any]:
        text = self.cleaned_data["rules"].strip() or "[]"
        try:
            value = json.loads(text)
        except ValueError as error:
            raise forms.ValidationError(f"This is not valid JSON: {error}.") from error
        if not isinstance(value, list):
            raise forms.ValidationError("The rules are a JSON list: [ ... ].")
        return value


class ApprovalExpiryForm(forms.Form):
    approval_expiry_hours = forms.IntegerField(
        label="Held emails expire after (hours)",
        min_value=0,
        max_value=MAX_APPROVAL_EXPIRY_HOURS,
        help_text="0: never. You get one reminder at half time.",
    )


class AccountSettingsForm(ApprovalExpiryForm):
    """The settings of PATCH /v1/account that apply at once (the oversight email confirms
    first: its own form)."""

    name = forms.CharField(label="Account name", max_length=200, validators=[header_text_validator])
    physical_address = forms.CharField(
        label="Postal address",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Printed in the compliance footer of outbound mail.",
    )
    require_operator_approval = forms.BooleanField(
        label="Agents' admin actions need my approval",
        required=False,
        template_name=CHECKBOX_FIELD,
        help_text="New keys, mailboxes, looser modes and rules asked for with an API key wait "
        "for you under Approvals (with an emailed code).",
    )

    field_order = ["name", "physical_address", "require_operator_approval"]


def _address_list(value: str) -> list[str]:
    """Comma- or line-separated addresses, each checked."""
    addresses = [part.strip() for part in value.replace("\n", ",").split(",") if part.strip()]
    for address in addresses:
        address_validator(address)
    return addresses


class EditApproveForm(forms.Form):
    """The operator's corrections to a held outbound email, approved in the same step."""

    to = forms.CharField(label="To", max_length=20_000, help_text="Comma-separated.")
    cc = forms.CharField(label="Cc", max_length=20_000, required=False)
    bcc = forms.CharField(label="Bcc", max_length=20_000, required=False)
    subject = forms.CharField(
        label="Subject", max_length=998, required=False, validators=[header_text_validator]
    )
    markdown = forms.CharField(
        label="Body (Markdown)", max_length=256 * 1024, widget=forms.Textarea, strip=False
    )

    def clean_to(self) -> list[str]:
        addresses = _address_list(self.cleaned_data["to"])
        if not addresses:
            raise forms.ValidationError("Give at least one recipient.")
        return addresses

    def clean_cc(self) -> list[str]:
        return _address_list(self.cleaned_data["cc"])

    def clean_bcc(self) -> list[str]:
        return _address_list(self.cleaned_data["bcc"])


class SuppressionSearchForm(forms.Form):
    q = forms.CharField(
        label="Address or domain",
        required=False,
        max_length=320,
        widget=forms.SearchInput(attrs={"placeholder": "ann@example.com or example.com"}),
    )


class SuppressionAddForm(forms.Form):
    address = forms.CharField(
        label="Email address",
        max_length=320,
        validators=[address_validator],
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )
    reason = forms.ChoiceField(
        label="Reason",
        choices=[(reason.value, reason.label) for reason in OPERATOR_REASONS],
    )
    note = forms.CharField(
        label="Note (optional)",
        required=False,
        max_length=500,
        help_text="Kept in the audit log, for example how the person asked to be removed.",
    )


class ApprovalDecisionForm(forms.Form):
    action = forms.ChoiceField(choices=[("approve", "Approve"), ("deny", "Deny")])
    reason = forms.CharField(required=False, max_length=DENY_REASON_MAX)
