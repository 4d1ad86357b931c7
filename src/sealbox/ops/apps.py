from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "sealbox.ops"
    label = "ops"
    verbose_name = "Operations"
