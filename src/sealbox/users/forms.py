from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from sealbox.accounts.forms import country_choices, time_zone_choices
from sealbox.accounts.models import Language, Organisation, Role, validate_sms_country
from sealbox.accounts.services import AccountError, check_organisation_name
from sealbox.lib import phones
from sealbox.users.services import LOGO_MAX_BYTES, check_logo


class SearchForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=100)


class AddUserForm(forms.Form):
    email = forms.EmailField(
        label=_("Email"), max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "off"})
    )
    first_name = forms.CharField(label=_("First name"), max_length=150, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=150, required=False)
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.MEMBER)
    mobile_phone = forms.CharField(
        label=_("Mobile phone"),
        max_length=32,
        required=False,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}),
        help_text=_("With its area code, for example 514 555 0100."),
    )

    def __init__(self, *args, country: str, **kwargs):
        self.country = country
        super().__init__(*args, **kwargs)

    def clean_mobile_phone(self) -> str:
        return phones.parse_optional_phone(self.cleaned_data["mobile_phone"], self.country)


class ImportForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"), widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"})
    )


class EditUserForm(forms.Form):
    first_name = forms.CharField(label=_("First name"), max_length=150, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=150, required=False)
    mobile_phone = forms.CharField(
        label=_("Mobile phone"),
        max_length=32,
        required=False,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}),
        help_text=_("With its area code, for example 514 555 0100."),
    )
    sms_country = forms.ChoiceField(
        label=_("Default SMS country"), choices=country_choices, validators=[validate_sms_country]
    )
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=time_zone_choices)
    language = forms.ChoiceField(label=_("Language"), choices=Language.choices)
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)
    enable_2fa = forms.BooleanField(label=_("Enable 2FA authentication"), required=False)

    def clean(self):
        data = super().clean()
        country = data.get("sms_country")
        if country and "mobile_phone" in data:
            try:
                data["mobile_phone"] = phones.parse_optional_phone(data["mobile_phone"], country)
            except ValidationError as error:
                self.add_error("mobile_phone", error)
        if (
            data.get("enable_2fa")
            and not data.get("mobile_phone")
            and "mobile_phone" not in self.errors
        ):
            self.add_error(
                "mobile_phone",
                _("Enter the user's mobile phone number to enable 2FA authentication."),
            )
        return data


class OrganisationForm(forms.ModelForm):
    default_sms_country = forms.ChoiceField(
        label=_("Default SMS country"), choices=country_choices, validators=[validate_sms_country]
    )
    default_expiry_days = forms.IntegerField(label=_("Default expiry (days)"), min_value=1)
    opening_code_in_separate_email = forms.TypedChoiceField(
        label=_("Opening code delivery"),
        choices=[
            ("False", _("In the notification email")),
            ("True", _("In a separate email")),
        ],
        coerce=lambda value: value == "True",
    )
    approved_email_domains = forms.CharField(
        label=_("Approved email domains"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One domain a line, for example example.com. Empty: any address."),
    )
    accent_colour = forms.CharField(
        label=_("Accent colour"),
        required=False,
        max_length=7,
        widget=forms.TextInput(attrs={"type": "color"}),
    )
    audit_retention_days = forms.IntegerField(
        label=_("Log retention (days)"), min_value=30, max_value=3650
    )
    require_2fa = forms.BooleanField(label=_("Require 2FA for all users"), required=False)
    logo = forms.FileField(
        label=_("Logo"),
        required=False,
        help_text=_(
            "PNG or JPEG, at most 500 KB. Shown on recipient pages; in emails when at most 48 KB."
        ),
        widget=forms.FileInput(attrs={"accept": "image/png,image/jpeg"}),
    )
    remove_logo = forms.BooleanField(label=_("Remove the logo"), required=False)

    class Meta:
        model = Organisation
        fields = [
            "name",
            "default_sms_country",
            "default_expiry_days",
            "opening_code_in_separate_email",
            "approved_email_domains",
            "accent_colour",
            "postal_address",
            "phone",
            "require_2fa",
        ]
        labels = {
            "name": _("Name"),
            "postal_address": _("Postal address"),
            "phone": _("Phone number"),
        }
        help_texts = {
            "postal_address": _("Optional. Printed at the foot of the emails recipients receive."),
            "phone": _(
                "Optional. Printed in the emails, so recipients can check with you by phone."
            ),
        }
        widgets = {"postal_address": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The retention field belongs to the audit app's purge; shown when it exists.
        if hasattr(self.instance, "audit_retention_days"):
            self.fields["audit_retention_days"].initial = self.instance.audit_retention_days
        else:
            del self.fields["audit_retention_days"]

    def clean_name(self):
        try:
            return check_organisation_name(self.cleaned_data.get("name", ""), exclude=self.instance)
        except AccountError as error:
            raise ValidationError(str(error)) from None

    def clean_logo(self):
        upload = self.cleaned_data.get("logo")
        if not upload:
            return None
        if upload.size > LOGO_MAX_BYTES:
            raise ValidationError(_("The logo must be at most 500 KB."))
        data = upload.read()
        try:
            check_logo(data)
        except AccountError as error:
            raise ValidationError(str(error)) from None
        return data


class SetPasswordForm(forms.Form):
    new_password1 = forms.CharField(
        label=_("New password"),
        strip=False,
        help_text=_("At least 12 characters. A passphrase of several words works well."),
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    new_password2 = forms.CharField(
        label=_("Confirm the new password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self):
        data = super().clean()
        if data.get("new_password1") and data.get("new_password1") != data.get("new_password2"):
            self.add_error("new_password2", _("The two passwords are not the same."))
        return data
