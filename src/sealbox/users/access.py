"""Who may act on whom: administrators of the same organisation, and the checks
every edit makes (never the last administrator, never oneself)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from sealbox.accounts.models import Organisation, Role, User
from sealbox.accounts.services import AccountError
from sealbox.twofactor import services as twofactor


def require_admin(actor: User) -> None:
    """Standard users get 403 on every administration page and API."""
    if not (actor.is_authenticated and actor.is_active and actor.is_org_admin):
        raise PermissionDenied


def organisation_users(actor: User) -> QuerySet[User]:
    require_admin(actor)
    return User.objects.filter(organisation=actor.organisation, deleted_at__isnull=True)


def user_for_admin(actor: User, pk: int) -> User:
    """A user of the administrator's organisation; any other user does not exist (404)."""
    user = organisation_users(actor).filter(pk=pk).first()
    if user is None:
        raise Http404
    return user


def list_users(actor: User, search: str = "") -> QuerySet[User]:
    users = organisation_users(actor)
    search = (search or "").strip()
    if search:
        users = users.filter(
            Q(email__icontains=search)
            | Q(first_name__icontains=search)
            | Q(last_name__icontains=search)
        )
    return users.order_by("email")


def active_admins(organisation: Organisation) -> QuerySet[User]:
    return organisation.users.filter(role=Role.ADMIN, is_active=True, deleted_at__isnull=True)


def _ensure_not_last_admin(target: User) -> None:
    if (
        target.role == Role.ADMIN
        and target.is_active
        and active_admins(target.organisation).count() <= 1
    ):
        raise AccountError(
            _(
                "%(email)s is the last active administrator of %(org)s. Make another user "
                "an administrator first."
            )
            % {"email": target.email, "org": target.organisation.name},
            code="last_admin",
        )


def _refusal(error: ValidationError) -> AccountError:
    """A model's validation error as a refusal naming its first field."""
    fields = list(getattr(error, "error_dict", {}))
    return AccountError(" ".join(error.messages), code="invalid", field=fields[0] if fields else "")


def _ensure_not_self(actor: User, target: User) -> None:
    if actor.pk == target.pk:
        raise AccountError(
            _("You cannot do this to your own account. Ask another administrator."),
            code="own_account",
        )


def has_two_factor(user: User) -> bool:
    return twofactor.has_second_factor(user)
