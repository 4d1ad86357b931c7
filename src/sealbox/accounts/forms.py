import zoneinfo

from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.forms import PasswordResetForm, SetPasswordForm
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from sealbox.accounts.models import (
    MAX_OPENS,
    Language,
    MessagePreferences,
    User,
    sms_countries,
    validate_sms_country,
)
from sealbox.notify import services as notify


class LoginForm(forms.Form):
    email = forms.EmailField(
        label=_("Email"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


def time_zone_choices() -> list[tuple[str, str]]:
    return [
        (name, name.replace("_", " "))
        for name in sorted(zoneinfo.available_timezones())
        if "/" in name and not name.startswith(("Etc/", "SystemV/", "posix/", "right/"))
    ]


def country_choices() -> list[tuple[str, str]]:
    """Exactly the countries validate_sms_country accepts."""
    import phonenumbers

    return sorted(
        (region, f"{region} (+{phonenumbers.country_code_for_region(region)})")
        for region in sms_countries()
    )


class ProfileForm(forms.ModelForm):
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=time_zone_choices)
    sms_country = forms.ChoiceField(
        label=_("Default SMS country"),
        choices=country_choices,
        required=False,
        validators=[validate_sms_country],
        help_text=_("Used to read phone numbers typed without a country code."),
    )

    def clean_sms_country(self) -> str:
        # Older forms did not send it: keep the saved value.
        return self.cleaned_data.get("sms_country") or self.instance.sms_country

    class Meta:
        model = User
        fields = ["first_name", "last_name", "time_zone", "language", "date_format", "sms_country"]
        labels = {
            "first_name": _("First name"),
            "last_name": _("Last name"),
            "language": _("Language"),
            "date_format": _("Date format"),
        }
        widgets = {
            "first_name": forms.TextInput(attrs={"autocomplete": "given-name"}),
            "last_name": forms.TextInput(attrs={"autocomplete": "family-name"}),
        }


class PasswordChangeForm(forms.Form):
    current_password = forms.CharField(
        label=_("Current password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    new_password = forms.CharField(
        label=_("New password"),
        strip=False,
        help_text=_("At least 12 characters. A passphrase of several words works well."),
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, user: User, *args, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_current_password(self) -> str:
        value = self.cleaned_data["current_password"]
        if not self.user.check_password(value):
            raise forms.ValidationError(_("Your current password is not correct."))
        return value

    def clean_new_password(self) -> str:
        value = self.cleaned_data["new_password"]
        password_validation.validate_password(value, self.user)
        return value


class SealboxPasswordResetForm(PasswordResetForm):
    email = forms.EmailField(
        label=_("Email"), max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )

    def get_users(self, email):
        return User.objects.filter(email=email.strip().lower(), is_active=True)

    def send_mail(
        self,
        subject_template_name,
        email_template_name,
        context,
        from_email,
        to_email,
        html_email_template_name=None,
    ):
        # The reset link is a secret: queue it encrypted, never as plain task data.
        notify.send_templated_email(
            to_email,
            subject_template=subject_template_name,
            text_template=email_template_name,
            context={
                "reset_url": settings.SEALBOX_BASE_URL
                + reverse(
                    "accounts:password_reset_confirm",
                    kwargs={"uidb64": context["uid"], "token": context["token"]},
                ),
                "user_name": context["user"].display_name,
            },
            language=context["user"].language,
            sensitive=True,
        )


class SealboxSetPasswordForm(SetPasswordForm):
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


class EmailChangeForm(forms.Form):
    new_email = forms.EmailField(
        label=_("New email address"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    password = forms.CharField(
        label=_("Your password"),
        strip=False,
        max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class ApiTokenForm(forms.Form):
    name = forms.CharField(label=_("Token name"), max_length=64)
    days = forms.TypedChoiceField(
        label=_("Expires after"),
        coerce=int,
        choices=[
            (7, _("7 days")),
            (30, _("30 days")),
            (90, _("90 days")),
            (365, _("1 year")),
        ],
        initial=30,
    )


class PreferencesForm(forms.ModelForm):
    max_opens = forms.IntegerField(label=_("Maximum opens"), min_value=1, max_value=MAX_OPENS)
    recipient_language = forms.ChoiceField(
        label=_("Recipient language"),
        required=False,
        choices=[("", _("Same as mine"))] + list(Language.choices),
    )

    class Meta:
        model = MessagePreferences
        fields = [
            "expiry_days",
            "max_opens",
            "verification",
            "notify_on_open",
            "show_subject",
            "keep_copy",
            "recipient_language",
        ]


class ReauthForm(forms.Form):
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )
