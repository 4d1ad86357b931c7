"""Every action the audit log records, and how the History names it.

An event stores its action's value (`"message.opened"`); code names the member
(`Action.MESSAGE_OPENED`), so a typo fails at import time instead of writing an event
no filter, label or export will ever find. Actions that only older releases recorded
stay here: their events are still in the chains, and the History still names them.
"""

from __future__ import annotations

from enum import StrEnum

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


class Action(StrEnum):
    # Organisations, licences and accounts
    ORGANISATION_CREATED = "organisation.created"
    ORGANISATION_UPDATED = "organisation.updated"
    LICENCE_CHANGED = "licence.changed"
    USER_CREATED = "user.created"
    PROFILE_UPDATED = "profile.updated"
    PREFERENCES_UPDATED = "preferences.updated"
    EMAIL_CHANGE_REQUESTED = "email.change_requested"
    EMAIL_CHANGED = "email.changed"
    PASSWORD_CHANGED = "password.changed"
    PASSWORD_RESET_REQUESTED = "password.reset_requested"
    PASSWORD_RESET = "password.reset"
    LOGIN_SUCCEEDED = "login.succeeded"
    LOGIN_FAILED = "login.failed"
    LOGOUT = "logout"
    SESSIONS_LOGGED_OUT_OTHERS = "sessions.logged_out_others"
    API_TOKEN_CREATED = "api_token.created"
    API_TOKEN_REVOKED = "api_token.revoked"

    # User administration
    USER_INVITED = "user.invited"
    USER_INVITATION_REFUSED = "user.invitation_refused"
    USER_INVITATION_RESENT = "user.invitation_resent"
    USER_INVITATION_ACCEPTED = "user.invitation_accepted"
    USER_IMPORTED = "user.imported"
    USER_UPDATED = "user.updated"
    USER_ROLE_CHANGED = "user.role_changed"
    USER_ENABLED = "user.enabled"
    USER_DISABLED = "user.disabled"
    USER_DELETED = "user.deleted"

    # Second factors
    TWOFACTOR_REQUIRED = "twofactor.required"
    TWOFACTOR_CODE_QUEUED = "twofactor.code_queued"
    TWOFACTOR_CODE_SENT = "twofactor.code_sent"  # recorded by older releases
    TWOFACTOR_SMS_FAILED = "twofactor.sms_failed"
    TWOFACTOR_VERIFIED = "twofactor.verified"
    TWOFACTOR_FAILED = "twofactor.failed"
    TWOFACTOR_LOCKED = "twofactor.locked"
    TWOFACTOR_ENABLED = "twofactor.enabled"
    TWOFACTOR_DISABLED = "twofactor.disabled"
    TWOFACTOR_PHONE_CHANGED = "twofactor.phone_changed"
    TWOFACTOR_PASSKEY_RENAMED = "twofactor.passkey_renamed"
    TWOFACTOR_RECOVERY_CODE_USED = "twofactor.recovery_code_used"
    TWOFACTOR_REAUTHENTICATED = "twofactor.reauthenticated"
    TWOFACTOR_REAUTH_FAILED = "twofactor.reauth_failed"
    TWOFACTOR_POLICY_CHANGED = "twofactor.policy_changed"
    TWOFACTOR_RESET = "twofactor.reset"

    # Messages, their recipients and replies
    MESSAGE_CREATED = "message.created"
    MESSAGE_SENT = "message.sent"
    NOTIFICATION_QUEUED = "notification.queued"
    NOTIFICATION_SENT = "notification.sent"  # recorded (at queue time) by older releases
    GRANT_VERIFICATION_FAILED = "grant.verification_failed"
    GRANT_LOCKED = "grant.locked"
    GRANT_UNLOCKED = "grant.unlocked"
    GRANT_EXPIRED = "grant.expired"
    MESSAGE_OPENED = "message.opened"
    FILE_DOWNLOADED = "file.downloaded"
    MESSAGE_EXPIRED = "message.expired"
    MESSAGE_DELETED = "message.deleted"
    UPLOAD_CANCELLED = "upload.cancelled"
    REPLY_SENT = "reply.sent"
    REPLY_OPENED = "reply.opened"
    SUBMISSION_OPENED = "submission.opened"

    # Secure envelopes
    ENVELOPE_CREATED = "envelope.created"
    ENVELOPE_LINK_QUEUED = "envelope.link_queued"
    ENVELOPE_DELIVERED = "envelope.delivered"  # recorded (at queue time) by older releases
    ENVELOPE_OPENED = "envelope.opened"
    ENVELOPE_VERIFICATION_FAILED = "envelope.verification_failed"
    ENVELOPE_LINK_LOCKED = "envelope.link_locked"
    ENVELOPE_LINK_UNLOCKED = "envelope.link_unlocked"
    ENVELOPE_SUBMITTED = "envelope.submitted"
    ENVELOPE_CLOSED = "envelope.closed"
    ENVELOPE_EXPIRED = "envelope.expired"

    # Outbox outcomes (`<channel>.<outcome>`, see `delivery_outcome`)
    EMAIL_SENT = "email.sent"
    EMAIL_DEFERRED = "email.deferred"
    EMAIL_FAILED = "email.failed"
    SMS_SENT = "sms.sent"
    SMS_DEFERRED = "sms.deferred"
    SMS_FAILED = "sms.failed"

    # The audit log itself
    HISTORY_EXPORTED = "history.exported"
    AUDIT_SEALING_KEY_CREATED = "audit.sealing_key_created"
    AUDIT_SEALING_KEY_REENCRYPTED = "audit.sealing_key_reencrypted"
    AUDIT_RETENTION_CHECKPOINT = "audit.retention_checkpoint"

    @property
    def label(self) -> Promise:
        return LABELS[self]


LABELS: dict[Action, Promise] = {
    Action.ORGANISATION_CREATED: _("Organisation created"),
    Action.ORGANISATION_UPDATED: _("Organisation settings changed"),
    Action.LICENCE_CHANGED: _("Licence changed"),
    Action.USER_CREATED: _("User created"),
    Action.PROFILE_UPDATED: _("Profile changed"),
    Action.PREFERENCES_UPDATED: _("Preferences changed"),
    Action.EMAIL_CHANGE_REQUESTED: _("Email address change requested"),
    Action.EMAIL_CHANGED: _("Email address changed"),
    Action.PASSWORD_CHANGED: _("Password changed"),
    Action.PASSWORD_RESET_REQUESTED: _("Password reset requested"),
    Action.PASSWORD_RESET: _("Password reset"),
    Action.LOGIN_SUCCEEDED: _("Logged in"),
    Action.LOGIN_FAILED: _("Login failed"),
    Action.LOGOUT: _("Logged out"),
    Action.SESSIONS_LOGGED_OUT_OTHERS: _("Other sessions logged out"),
    Action.API_TOKEN_CREATED: _("API token created"),
    Action.API_TOKEN_REVOKED: _("API token revoked"),
    Action.USER_INVITED: _("User invited"),
    Action.USER_INVITATION_REFUSED: _("Invitation refused: the address is not available"),
    Action.USER_INVITATION_RESENT: _("Invitation sent again"),
    Action.USER_INVITATION_ACCEPTED: _("Invitation accepted"),
    Action.USER_IMPORTED: _("User imported"),
    Action.USER_UPDATED: _("User changed"),
    Action.USER_ROLE_CHANGED: _("User's role changed"),
    Action.USER_ENABLED: _("User enabled"),
    Action.USER_DISABLED: _("User disabled"),
    Action.USER_DELETED: _("User deleted"),
    Action.TWOFACTOR_REQUIRED: _("Password accepted: second factor required"),
    Action.TWOFACTOR_CODE_QUEUED: _("Verification code queued for sending"),
    Action.TWOFACTOR_CODE_SENT: _("Verification code sent"),
    Action.TWOFACTOR_SMS_FAILED: _("Verification code by SMS not delivered"),
    Action.TWOFACTOR_VERIFIED: _("Second factor verified"),
    Action.TWOFACTOR_FAILED: _("Second factor refused"),
    Action.TWOFACTOR_LOCKED: _("Second factor locked after too many wrong attempts"),
    Action.TWOFACTOR_ENABLED: _("Second factor added"),
    Action.TWOFACTOR_DISABLED: _("Second factor removed"),
    Action.TWOFACTOR_PHONE_CHANGED: _("Mobile phone changed"),
    Action.TWOFACTOR_PASSKEY_RENAMED: _("Passkey renamed"),
    Action.TWOFACTOR_RECOVERY_CODE_USED: _("Recovery code used"),
    Action.TWOFACTOR_REAUTHENTICATED: _("Identity confirmed again"),
    Action.TWOFACTOR_REAUTH_FAILED: _("Identity confirmation failed"),
    Action.TWOFACTOR_POLICY_CHANGED: _("Two-factor policy changed"),
    Action.TWOFACTOR_RESET: _("Second factors reset by an administrator"),
    Action.MESSAGE_CREATED: _("Message prepared"),
    Action.MESSAGE_SENT: _("Message sent"),
    Action.NOTIFICATION_QUEUED: _("Notification email queued for sending"),
    Action.NOTIFICATION_SENT: _("Notification email sent"),
    Action.GRANT_VERIFICATION_FAILED: _("Verification failed"),
    Action.GRANT_LOCKED: _("Link locked after too many wrong attempts"),
    Action.GRANT_UNLOCKED: _("Link unlocked"),
    Action.GRANT_EXPIRED: _("Link expired"),
    Action.MESSAGE_OPENED: _("Opened"),
    Action.FILE_DOWNLOADED: _("File downloaded"),
    Action.MESSAGE_EXPIRED: _("Message expired"),
    Action.MESSAGE_DELETED: _("Deleted"),
    Action.UPLOAD_CANCELLED: _("Upload cancelled before sending"),
    Action.REPLY_SENT: _("Reply sent"),
    Action.REPLY_OPENED: _("Reply opened"),
    Action.SUBMISSION_OPENED: _("Submission opened"),
    Action.ENVELOPE_CREATED: _("Envelope created"),
    Action.ENVELOPE_LINK_QUEUED: _("Envelope link queued for sending"),
    Action.ENVELOPE_DELIVERED: _("Envelope link sent"),
    Action.ENVELOPE_OPENED: _("Envelope link opened"),
    Action.ENVELOPE_VERIFICATION_FAILED: _("Envelope verification failed"),
    Action.ENVELOPE_LINK_LOCKED: _("Link locked after too many wrong attempts"),
    Action.ENVELOPE_LINK_UNLOCKED: _("Link unlocked"),
    Action.ENVELOPE_SUBMITTED: _("Envelope submitted"),
    Action.ENVELOPE_CLOSED: _("Envelope closed"),
    Action.ENVELOPE_EXPIRED: _("Envelope expired"),
    Action.EMAIL_SENT: _("Email accepted by the mail server"),
    Action.EMAIL_DEFERRED: _("Email delayed: Sealbox will try again"),
    Action.EMAIL_FAILED: _("Email not delivered"),
    Action.SMS_SENT: _("SMS accepted by the SMS gateway"),
    Action.SMS_DEFERRED: _("SMS delayed: Sealbox will try again"),
    Action.SMS_FAILED: _("SMS not delivered"),
    Action.HISTORY_EXPORTED: _("Activity log exported"),
    Action.AUDIT_SEALING_KEY_CREATED: _("Sealing key created"),
    Action.AUDIT_SEALING_KEY_REENCRYPTED: _("Sealing key re-encrypted with the current secret key"),
    Action.AUDIT_RETENTION_CHECKPOINT: _("Older events removed after a signed checkpoint"),
}

# Events whose "to" detail says who the email was for: the History shows it beside the
# label, so that a failure names the address (a recipient's link, or the sender's notice).
ADDRESSED = frozenset(
    {
        Action.NOTIFICATION_QUEUED,
        Action.NOTIFICATION_SENT,
        Action.EMAIL_SENT,
        Action.EMAIL_DEFERRED,
        Action.EMAIL_FAILED,
    }
)

_OUTCOMES = {
    ("email", "sent"): Action.EMAIL_SENT,
    ("email", "deferred"): Action.EMAIL_DEFERRED,
    ("email", "failed"): Action.EMAIL_FAILED,
    ("sms", "sent"): Action.SMS_SENT,
    ("sms", "deferred"): Action.SMS_DEFERRED,
    ("sms", "failed"): Action.SMS_FAILED,
}


def delivery_outcome(channel: str, outcome: str) -> Action:
    """The action of an outbox outcome: `sent`, `deferred` or `failed` on a channel."""
    return _OUTCOMES[(channel, outcome)]


def label(action: str) -> str:
    """How the History names a stored action (an unknown one, as it is stored)."""
    try:
        return str(LABELS[Action(action)])
    except ValueError:
        return action
