from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TwoFactorConfig(AppConfig):
    name = "sealbox.twofactor"
    label = "twofactor"
    verbose_name = _("Two-factor authentication")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at the top: an AppConfig module is loaded before any model,
        # and these modules import models. SMS delivery reports come back from the notify
        # task through signals (notify never depends on twofactor); the login's second
        # step and the account page's phone section are handed to accounts through its
        # registry (accounts never depends on twofactor).
        from sealbox.accounts import registry
        from sealbox.twofactor import receivers, views  # noqa: F401

        registry.register_second_step(views.second_step)
        registry.register_account_section(views.account_section)
