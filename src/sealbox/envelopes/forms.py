from django import forms
from django.utils.translation import gettext_lazy as _

from sealbox.accounts.models import Language
from sealbox.envelopes import services
from sealbox.envelopes.models import EnvelopeVerification, FilesMode
from sealbox.exchange.services import MAX_OPENS, MAX_RECIPIENTS

# The form reads the input; the rules (ranges, lengths) are the service's, checked for
# every caller (this page and the API). The bounds below only help the browser.


def bounded(low: int, high: int | None = None) -> forms.NumberInput:
    attrs = {"min": low} if high is None else {"min": low, "max": high}
    return forms.NumberInput(attrs=attrs)


EXPIRY_CHOICES = [("1", _("1 day")), ("7", _("7 days")), ("30", _("30 days"))]
REPLY_EXPIRY_CHOICES = [
    ("1", _("1 hour")),
    ("24", _("24 hours")),
    ("72", _("3 days")),
    ("168", _("7 days")),
]
AUDIENCE_CHOICES = [
    ("recipients", _("Recipients I choose")),
    ("public", _("Anyone with the link (public link, e.g. for a web site)")),
]


class EnvelopeRecipientForm(forms.Form):
    email = forms.EmailField(label=_("Email"), max_length=services.MAX_EMAIL_LENGTH, required=False)
    phone = forms.CharField(label=_("Mobile phone"), required=False, max_length=32)
    verification = forms.ChoiceField(
        label=_("Verification"),
        choices=EnvelopeVerification.choices,
        initial=EnvelopeVerification.NONE,
    )
    password = forms.CharField(
        label=_("Password for this recipient"),
        required=False,
        max_length=services.MAX_PASSWORD_LENGTH,
        help_text=_("Give it to the recipient by another channel (phone, in person)."),
        widget=forms.PasswordInput(render_value=True, attrs={"autocomplete": "new-password"}),
    )


RecipientFormSet = forms.formset_factory(
    EnvelopeRecipientForm, extra=0, min_num=1, max_num=MAX_RECIPIENTS
)


class EnvelopeForm(forms.Form):
    subject = forms.CharField(
        label=_("Subject"),
        max_length=services.MAX_SUBJECT_LENGTH,
        help_text=_("Not encrypted: it appears in logs, emails and on the submitter's page."),
    )
    audience = forms.ChoiceField(
        label=_("Who fills it"),
        choices=AUDIENCE_CHOICES,
        initial="recipients",
        widget=forms.RadioSelect,
    )
    instructions = forms.CharField(
        label=_("Instructions"),
        required=False,
        max_length=services.MAX_INSTRUCTIONS_LENGTH,
        help_text=_("Shown to the submitter. Not encrypted: put nothing secret here."),
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    files_mode = forms.ChoiceField(
        label=_("Files"), choices=FilesMode.choices, initial=FilesMode.OPTIONAL
    )
    allowed_extensions = forms.CharField(
        label=_("Allowed file types"),
        required=False,
        max_length=services.MAX_EXTENSIONS_LENGTH,
        help_text=_("Extensions separated by spaces or commas, like: pdf jpg docx. Empty: any."),
    )
    max_total_mb = forms.IntegerField(
        label=_("Largest total size (MB)"), required=False, widget=bounded(1)
    )
    expires = forms.ChoiceField(
        label=_("Envelope expires"),
        choices=EXPIRY_CHOICES,
        initial=str(services.DEFAULT_EXPIRY_DAYS),
    )
    reply_expiry_hours = forms.ChoiceField(
        label=_("Reply expires"),
        choices=REPLY_EXPIRY_CHOICES,
        initial="24",
        help_text=_("How long you can open what was submitted, counted from its submission."),
    )
    reply_max_opens = forms.IntegerField(
        label=_("Maximum opens of the reply"), initial=3, widget=bounded(1, MAX_OPENS)
    )
    notify_on_use = forms.BooleanField(
        label=_("Notify me when it is used"), required=False, initial=True
    )
    language = forms.ChoiceField(label=_("Recipient language"), choices=Language.choices)
    per_ip_hourly = forms.IntegerField(
        label=_("Submissions per hour from one address (public link)"),
        initial=5,
        widget=bounded(1, services.MAX_PER_IP_HOURLY),
    )
    max_submissions = forms.IntegerField(
        label=_("Most submissions in total (public link)"),
        initial=100,
        widget=bounded(1, services.MAX_SUBMISSIONS),
    )
