from django.urls import path

from sealbox.accounts import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("account/", views.account_view, name="account"),
    path("account/password/", views.password_change_view, name="password_change"),
    # Under /account/security/ with the pages that most often ask for it.
    path("account/security/confirm-password/", views.reauth_view, name="reauth"),
    path("account/email/", views.email_change_view, name="email_change"),
    path("account/email/confirm/<str:token>/", views.email_confirm_view, name="email_confirm"),
    path(
        "account/sessions/logout-others/", views.sessions_logout_others_view, name="logout_others"
    ),
    path("account/tokens/", views.token_create_view, name="token_create"),
    path("account/tokens/<int:pk>/revoke/", views.token_revoke_view, name="token_revoke"),
    path("account/preferences/", views.preferences_view, name="preferences"),
    path("password-reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/sent/", views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password-reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done/",
        views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
]
