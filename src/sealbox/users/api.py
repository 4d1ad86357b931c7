"""User administration over the REST API (administrators of the organisation only)."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from ninja import Field, Router, Schema, Status
from ninja.errors import ValidationError as InvalidInput

from sealbox.accounts.models import Language, Role, User, validate_sms_country
from sealbox.accounts.services import AccountError
from sealbox.lib import phones
from sealbox.users import services

router = Router(tags=["users"])


class UserOut(Schema):
    id: int
    email: str
    first_name: str
    last_name: str
    role: str
    is_active: bool
    two_factor: bool
    last_login: datetime | None


class UserIn(Schema):
    email: str = Field(..., max_length=254)
    first_name: str = Field("", max_length=150)
    last_name: str = Field("", max_length=150)
    role: Role = Role.MEMBER
    mobile_phone: str = Field("", max_length=32)


class UserPatch(Schema):
    first_name: str | None = Field(None, max_length=150)
    last_name: str | None = Field(None, max_length=150)
    role: Role | None = None
    sms_country: str | None = Field(None, min_length=2, max_length=2)
    time_zone: str | None = Field(None, max_length=64)
    language: Language | None = None
    mobile_phone: str | None = Field(None, max_length=32)
    enable_2fa: bool | None = None


def _out(user: User) -> dict:
    return {
        "id": user.pk,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "role": user.role,
        "is_active": user.is_active,
        "two_factor": services.has_two_factor(user),
        "last_login": user.last_login,
    }


def _admin(request) -> User:
    try:
        services.require_admin(request.auth)
    except PermissionDenied:
        raise AccountError(
            "Only administrators of the organisation can do this.", status=403, code="forbidden"
        ) from None
    return request.auth


@router.get("/users", response=list[UserOut])
def list_users(request, q: str = ""):
    return [_out(u) for u in services.list_users(_admin(request), q[:100])]


@router.post("/users", response={201: UserOut})
def add_user(request, payload: UserIn):
    actor = _admin(request)
    try:
        phone = phones.parse_optional_phone(
            payload.mobile_phone, actor.organisation.default_sms_country
        )
        user = services.invite_user(
            request,
            actor,
            services.NewUser(
                email=payload.email,
                first_name=payload.first_name,
                last_name=payload.last_name,
                role=payload.role,
                mobile_phone=phone,
            ),
        )
    except ValidationError as error:
        raise _invalid("mobile_phone", error) from None
    return Status(201, _out(user))


def _message(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    return str(error)


def _invalid(field: str, error: Exception) -> InvalidInput:
    """A 422 shaped like the schema's own validation errors, naming the field."""
    return InvalidInput([{"loc": ["body", field], "msg": _message(error)}])


@router.get("/users/{user_id}", response=UserOut)
def get_user(request, user_id: int):
    return _out(services.user_for_admin(_admin(request), user_id))


@router.patch("/users/{user_id}", response=UserOut)
def edit_user(request, user_id: int, payload: UserPatch):
    actor = _admin(request)
    target = services.user_for_admin(actor, user_id)
    values = {k: v for k, v in payload.dict().items() if v is not None}
    phone = values.pop("mobile_phone", None)
    if "sms_country" in values:
        # The forms' rule, before the phone is read with it.
        values["sms_country"] = values["sms_country"].upper()
        try:
            validate_sms_country(values["sms_country"])
        except ValidationError as error:
            raise _invalid("sms_country", error) from None
    try:
        if phone:
            phone = phones.parse_phone(phone, values.get("sms_country") or target.sms_country)
        services.update_user(
            request,
            actor,
            target,
            mobile_phone=phone,
            enable_2fa=values.pop("enable_2fa", None),
            **values,
        )
    except AccountError as error:
        # A field at fault answers as the schema's own validation errors do.
        if error.field:
            raise _invalid(error.field, error) from None
        raise
    except ValidationError as error:
        raise _invalid("mobile_phone", error) from None
    return _out(services.user_for_admin(actor, user_id))


@router.post("/users/{user_id}/disable", response=UserOut)
def disable_user(request, user_id: int):
    actor = _admin(request)
    target = services.user_for_admin(actor, user_id)
    services.set_active(request, actor, target, False)
    return _out(target)


@router.post("/users/{user_id}/enable", response=UserOut)
def enable_user(request, user_id: int):
    actor = _admin(request)
    target = services.user_for_admin(actor, user_id)
    services.set_active(request, actor, target, True)
    return _out(target)


@router.delete("/users/{user_id}", response={204: None})
def delete_user(request, user_id: int):
    actor = _admin(request)
    target = services.user_for_admin(actor, user_id)
    services.delete_user(request, actor, target)
    return Status(204, None)
