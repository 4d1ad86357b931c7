"""django.contrib.admin with the operator site (sealbox.admin_site) as `admin.site`, so
every app's admin.register lands on it. Kept apart from the site: an AppConfig module is
imported before the models are ready."""

from django.contrib.admin.apps import AdminConfig


class OperatorAdminConfig(AdminConfig):
    default_site = "sealbox.admin_site.OperatorAdminSite"
