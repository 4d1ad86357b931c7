from django.apps import AppConfig


class NotifyConfig(AppConfig):
    name = "sealbox.notify"
    label = "notify"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from sealbox.notify import receivers  # noqa: F401
