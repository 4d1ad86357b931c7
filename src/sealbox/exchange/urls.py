from django.urls import path

from sealbox.exchange import views

app_name = "exchange"

urlpatterns = [
    path("send/", views.send_view, name="send"),
    path("messages/<uuid:public_id>/delete/", views.delete_view, name="delete"),
    path(
        "messages/<uuid:public_id>/recipients/<int:grant_id>/unlock/",
        views.unlock_grant_view,
        name="unlock_grant",
    ),
    path("o/<str:token>", views.open_view, name="open"),
]
