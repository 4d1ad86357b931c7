from django import forms
from django.utils.translation import gettext_lazy as _

from sealbox.accounts.models import MAX_OPENS, Language
from sealbox.exchange.models import ReplyMode, Verification

EXPIRY_PRESETS = [
    ("1", _("1 day")),
    ("7", _("7 days")),
    ("30", _("30 days")),
    ("date", _("On a date")),
]


class RecipientForm(forms.Form):
    """One recipient row; the page's script adds rows with the same labels."""

    email = forms.EmailField(label=_("Email"), max_length=254)
    phone = forms.CharField(
        label=_("Mobile phone"),
        required=False,
        max_length=32,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}),
    )
    verification = forms.ChoiceField(
        label=_("Verification"),
        # "Sender's account" is the sender's own copy, never a recipient's choice.
        choices=[c for c in Verification.choices if c[0] != Verification.ACCOUNT],
        initial=Verification.OPENING_CODE,
    )
    password = forms.CharField(
        label=_("Password for this recipient"),
        required=False,
        help_text=_("Give it to the recipient by another channel (phone, in person)."),
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )


class SendForm(forms.Form):
    """The message's own fields. Content never reaches the server through this form:
    the page's script encrypts it and talks to the API."""

    subject = forms.CharField(
        label=_("Subject"),
        max_length=200,
        help_text=_(
            "The subject is not encrypted: it appears in logs and, if you choose, in the email."
        ),
    )
    body = forms.CharField(
        label=_("Message"), required=False, widget=forms.Textarea(attrs={"rows": 8})
    )
    expires = forms.ChoiceField(label=_("Expires"), choices=EXPIRY_PRESETS, initial="7")
    expiry_date = forms.DateField(
        label=_("Expiry date"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    max_opens = forms.IntegerField(
        label=_("Maximum opens"), min_value=1, max_value=MAX_OPENS, initial=1
    )
    notify_on_open = forms.BooleanField(
        label=_("Notify me when it is opened"), required=False, initial=True
    )
    show_subject = forms.BooleanField(
        label=_("Show the subject in the email"), required=False, initial=True
    )
    keep_copy = forms.BooleanField(label=_("Keep a copy for me"), required=False)
    language = forms.ChoiceField(label=_("Recipient language"), choices=Language.choices)
    reply_mode = forms.ChoiceField(
        label=_("Replies"), choices=ReplyMode.choices, initial=ReplyMode.NONE
    )
