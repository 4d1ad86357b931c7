from django.apps import AppConfig


class RateLimitConfig(AppConfig):
    name = "sealbox.ratelimit"
    label = "ratelimit"
    verbose_name = "Rate limits"
