from django.contrib import admin
from django.urls import include, path

from sealbox import views
from sealbox.api.main import api
from sealbox.ops import views as ops

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("metrics", ops.metrics_view, name="metrics"),
    path("i18n/language/", views.set_language, name="set_language"),
    path("", include("sealbox.accounts.urls")),
    path("", include("sealbox.twofactor.urls")),  # two-factor login step and security pages
    path("", include("sealbox.exchange.urls")),
    path("", include("sealbox.envelopes.urls")),  # secure envelopes and the submitter's page
    path("", include("sealbox.history.urls")),
    path("", include("sealbox.users.urls")),  # user administration, invitations
    path("api/v1/", api.urls),
    path("operator/", admin.site.urls),
]
