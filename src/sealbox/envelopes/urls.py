from django.urls import path

from sealbox.envelopes import views

app_name = "envelopes"

urlpatterns = [
    path("envelopes/", views.list_view, name="list"),
    path("envelopes/new/", views.new_view, name="new"),
    path("envelopes/<uuid:public_id>/", views.detail_view, name="detail"),
    path("envelopes/<uuid:public_id>/close/", views.close_view, name="close"),
    path(
        "envelopes/<uuid:public_id>/links/<int:link_id>/unlock/",
        views.unlock_link_view,
        name="unlock_link",
    ),
    path("e/<str:token>", views.submit_view, name="submit"),
    path("e/<str:token>/sent", views.sent_view, name="sent"),
]
