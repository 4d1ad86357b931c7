from django.urls import path

from sealbox.exchange import views

app_name = "exchange"

urlpatterns = [
    path("send/", views.send_view, name="send"),
    path("messages/<uuid:public_id>/delete/", views.delete_view, name="delete"),
    path("o/<str:token>", views.open_view, name="open"),
]
