from django.urls import path

from sealbox.twofactor import views

app_name = "twofactor"

urlpatterns = [
    path("login/verify/", views.login_verify, name="login_verify"),
    path("login/verify/send/", views.login_send, name="login_send"),
    path("login/verify/methods/", views.login_methods, name="login_methods"),
    path("login/verify/passkey/begin/", views.login_passkey_begin, name="login_passkey_begin"),
    path(
        "login/verify/passkey/complete/",
        views.login_passkey_complete,
        name="login_passkey_complete",
    ),
    path("account/security/", views.security, name="security"),
    path("account/security/authenticator/", views.totp_setup, name="totp_setup"),
    path("account/security/authenticator/remove/", views.totp_remove, name="totp_remove"),
    path(
        "account/security/passkeys/begin/",
        views.passkey_register_begin,
        name="passkey_register_begin",
    ),
    path(
        "account/security/passkeys/complete/",
        views.passkey_register_complete,
        name="passkey_register_complete",
    ),
    path("account/security/passkeys/<int:pk>/rename/", views.passkey_rename, name="passkey_rename"),
    path("account/security/passkeys/<int:pk>/remove/", views.passkey_remove, name="passkey_remove"),
    path("account/security/recovery-codes/", views.recovery_codes, name="recovery_codes"),
    path(
        "account/security/recovery-codes/download/",
        views.recovery_codes_download,
        name="recovery_codes_download",
    ),
    path("account/security/organisation/", views.policy, name="policy"),
    path("account/security/users/<int:pk>/reset/", views.user_reset, name="user_reset"),
]
