from django.apps import AppConfig


class EnvelopesConfig(AppConfig):
    name = "sealbox.envelopes"
    label = "envelopes"
    default_auto_field = "django.db.models.BigAutoField"
