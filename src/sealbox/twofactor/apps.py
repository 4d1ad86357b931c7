from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TwoFactorConfig(AppConfig):
    name = "sealbox.twofactor"
    label = "twofactor"
    verbose_name = _("Two-factor authentication")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # SMS delivery reports come back from the notify task through signals, so that
        # notify never depends on twofactor.
        from sealbox.twofactor import receivers  # noqa: F401
