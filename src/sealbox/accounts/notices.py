"""Security notices: the email that tells a user their account's security changed,
and the lazy sentences they are written in; the hash of every token accounts stores."""

from __future__ import annotations

from sealbox.accounts.models import User
from sealbox.notify import services as notify


def email_security_notice(user: User, what, *, actor: User | None = None, to: str = "") -> None:
    """Tell a user that something about their account's security changed.

    `what` is a lazy translation: it is rendered in the user's language.
    """
    from django.conf import settings

    notify.send_templated_email(
        to or user.email,
        subject_template="accounts/email/security_notice_subject.txt",
        text_template="accounts/email/security_notice.txt",
        context={
            "user_name": user.display_name,
            "what": what,
            "admin_name": actor.display_name if actor is not None and actor != user else "",
            "base_url": settings.SEALBOX_BASE_URL,
        },
        language=user.language,
    )


def token_hash(secret: str) -> str:
    import hashlib

    return hashlib.sha256(secret.encode()).hexdigest()


class _lazy:
    """A translatable sentence with values, translated when rendered (in an email's
    language, not the language of the request that caused it)."""

    def __init__(self, text: str, **values):
        self.text = text
        self.values = values

    def __str__(self) -> str:
        from django.utils.translation import gettext

        return gettext(self.text) % self.values
