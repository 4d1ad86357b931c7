from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ExchangeConfig(AppConfig):
    name = "sealbox.exchange"
    label = "exchange"
    verbose_name = _("Secure messages")

    def ready(self) -> None:
        # Imported here: an AppConfig module is loaded before the models it would import.
        from sealbox.accounts import registry
        from sealbox.exchange import usage

        registry.register_usage_counter(usage.COUNTER)
