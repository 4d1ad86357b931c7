from django.urls import path

from sealbox.history import views

app_name = "history"

urlpatterns = [
    path("history/", views.history_view, name="history"),
    path("history/statistics/", views.statistics_view, name="statistics"),
    path("messages/<uuid:public_id>/", views.message_view, name="message"),
    path("history/export.<str:kind>", views.export_view, name="export"),
    path("history/seal-certificate.pem", views.certificate_view, name="certificate"),
]
