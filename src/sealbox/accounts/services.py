"""Business rules for organisations, licences, users and logging in.

Each job has its module: `organisations` (names, licences, seats, usage), `members`
(new users and the addresses they may have), `profile` (profile and message
preferences), `passwords` (changes and reset links), `login` (the password step and
opening the session), `sessions` (session clocks, records, logging out), `tokens`
(personal API tokens), `emails` (email address changes), `notices` (security emails),
`errors`. Callers use the names gathered here.
"""

from __future__ import annotations

from sealbox.accounts.emails import (
    EMAIL_CHANGE_LIFETIME,
    confirm_email_change,
    pending_email_change,
    pending_email_for,
    request_email_change,
)
from sealbox.accounts.errors import (
    AccountError,
    AddressUnavailable,
    NotTheirs,
    OrganisationNotFound,
)
from sealbox.accounts.login import (
    LOGIN_DELAY_AFTER,
    LOGIN_FAILURES_PER_ACCOUNT,
    LOGIN_FAILURES_PER_IP,
    LoginResult,
    check_password,
    complete_login,
    login_delay,
    login_throttle,
)
from sealbox.accounts.members import (
    DELETED_EMAIL_DOMAIN,
    check_new_email,
    create_user,
    domain_refused_message,
    email_allowed,
)
from sealbox.accounts.notices import email_security_notice, token_hash
from sealbox.accounts.organisations import (
    LicenceSummary,
    check_organisation_name,
    find_organisation,
    get_or_create_organisation,
    licence_summary,
    messages_sent_this_month,
    organisation_name_taken,
    seats_used,
    set_licence,
)
from sealbox.accounts.passwords import (
    RESET_REQUESTS_PER_EMAIL,
    RESET_REQUESTS_PER_IP,
    PasswordResetTokens,
    change_password,
    password_reset_tokens,
    record_password_reset,
    request_password_reset,
)
from sealbox.accounts.profile import (
    PREFERENCE_FIELDS,
    PROFILE_FIELDS,
    message_preferences,
    update_preferences,
    update_profile,
)
from sealbox.accounts.sessions import (
    SESSION_AUTHENTICATED_AT,
    SESSION_LOGIN_AT,
    SESSION_SEEN_AT,
    SESSION_TOUCH_SECONDS,
    active_sessions,
    describe_device,
    end_sessions,
    forget_session,
    log_out,
    log_out_other_sessions,
    record_session,
    touch_session,
)
from sealbox.accounts.tokens import (
    MAX_TOKENS_PER_USER,
    TOKEN_EXPIRY_CHOICES_DAYS,
    TOKEN_PREFIX,
    TOKEN_TOUCH_SECONDS,
    create_api_token,
    live_tokens,
    revoke_api_token,
    user_for_token,
)

__all__ = [
    "AccountError",
    "AddressUnavailable",
    "DELETED_EMAIL_DOMAIN",
    "EMAIL_CHANGE_LIFETIME",
    "LOGIN_DELAY_AFTER",
    "LOGIN_FAILURES_PER_ACCOUNT",
    "LOGIN_FAILURES_PER_IP",
    "LicenceSummary",
    "LoginResult",
    "MAX_TOKENS_PER_USER",
    "NotTheirs",
    "OrganisationNotFound",
    "PREFERENCE_FIELDS",
    "PROFILE_FIELDS",
    "PasswordResetTokens",
    "RESET_REQUESTS_PER_EMAIL",
    "RESET_REQUESTS_PER_IP",
    "SESSION_AUTHENTICATED_AT",
    "SESSION_LOGIN_AT",
    "SESSION_SEEN_AT",
    "SESSION_TOUCH_SECONDS",
    "TOKEN_EXPIRY_CHOICES_DAYS",
    "TOKEN_PREFIX",
    "TOKEN_TOUCH_SECONDS",
    "active_sessions",
    "change_password",
    "check_new_email",
    "check_organisation_name",
    "check_password",
    "complete_login",
    "confirm_email_change",
    "create_api_token",
    "create_user",
    "describe_device",
    "domain_refused_message",
    "email_allowed",
    "email_security_notice",
    "end_sessions",
    "find_organisation",
    "forget_session",
    "get_or_create_organisation",
    "licence_summary",
    "live_tokens",
    "log_out",
    "log_out_other_sessions",
    "login_delay",
    "login_throttle",
    "message_preferences",
    "messages_sent_this_month",
    "organisation_name_taken",
    "password_reset_tokens",
    "pending_email_change",
    "pending_email_for",
    "record_password_reset",
    "record_session",
    "request_email_change",
    "request_password_reset",
    "revoke_api_token",
    "seats_used",
    "set_licence",
    "token_hash",
    "touch_session",
    "update_preferences",
    "update_profile",
    "user_for_token",
]
