from __future__ import annotations

import re

from django import forms
from django.utils.translation import gettext_lazy as _

from sealbox.lib import phones
from sealbox.twofactor import services

AREA_CODE_ALERT = _(
    "Make sure your mobile phone number is entered correctly with the area code, as the "
    "authentication code will be sent to you by SMS."
)


class PhoneSettingsForm(forms.Form):
    """The seed's two controls: the 2FA checkbox and the mobile number."""

    enabled = forms.BooleanField(label=_("Enable 2FA authentication"), required=False)
    mobile_phone = forms.CharField(
        label=_("Mobile phone"),
        required=False,
        max_length=40,
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel"}),
    )

    def __init__(self, *args, country: str, **kwargs):
        self.country = country
        super().__init__(*args, **kwargs)
        # The seed's alert about the area code is read with the field.
        describedby = "twofactor-phone-alert"
        if self.is_bound and self.errors.get("mobile_phone"):
            describedby += f" {self['mobile_phone'].auto_id}_error"
        self.fields["mobile_phone"].widget.attrs["aria-describedby"] = describedby

    def clean_mobile_phone(self) -> str:
        return phones.parse_optional_phone(self.cleaned_data.get("mobile_phone", ""), self.country)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("enabled") and not cleaned.get("mobile_phone") and not self.errors:
            self.add_error(
                "mobile_phone",
                _("Enter your mobile phone number with its area code: the code is sent to it."),
            )
        return cleaned


CODE_SEPARATORS = re.compile(r"[\s-]")


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code"),
        max_length=20,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "autofocus": True,
                "spellcheck": "false",
            }
        ),
        error_messages={"required": _("Enter the 6-digit code.")},
    )

    def clean_code(self) -> str:
        value = CODE_SEPARATORS.sub("", self.cleaned_data["code"])
        if not (value.isdigit() and len(value) == services.CODE_DIGITS):
            raise forms.ValidationError(_("Enter the 6-digit code."))
        return value


class RecoveryCodeForm(forms.Form):
    code = forms.CharField(
        label=_("Recovery code"),
        max_length=40,
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autofocus": True, "spellcheck": "false"}
        ),
        error_messages={"required": _("Enter one of your recovery codes.")},
    )

    def clean_code(self) -> str:
        return self.cleaned_data["code"].strip().lower()


class PasskeyNameForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=64,
        help_text=_("For example: laptop, phone, blue security key."),
    )


class PolicyForm(forms.Form):
    require_2fa = forms.BooleanField(label=_("Require 2FA for all users"), required=False)
