from django.urls import path

from sealbox.users import views

app_name = "users"

urlpatterns = [
    path("users/", views.user_list, name="list"),
    path("users/add/", views.user_add, name="add"),
    path("users/import/", views.user_import, name="import"),
    path("users/import/template.csv", views.user_import_template, name="import_template"),
    path("users/organisation/", views.organisation_settings, name="organisation"),
    path("users/<int:pk>/", views.user_edit, name="edit"),
    path("users/<int:pk>/disable/", views.user_set_active, {"active": False}, name="disable"),
    path("users/<int:pk>/enable/", views.user_set_active, {"active": True}, name="enable"),
    path("users/<int:pk>/invite/", views.user_resend_invitation, name="resend_invitation"),
    path("users/<int:pk>/delete/", views.user_delete, name="delete"),
    path("organisation-logo/<int:pk>/", views.organisation_logo, name="logo"),
    path("organisation-theme/<int:pk>.css", views.organisation_theme, name="theme"),
    path("invitation/<str:token>/", views.invitation, name="invitation"),
]
