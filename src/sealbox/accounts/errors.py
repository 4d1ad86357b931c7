"""The errors of accounts: what the rules refuse, and how the API answers it."""

from __future__ import annotations

from sealbox.lib.errors import SealboxError


class AccountError(SealboxError):
    """A request on accounts, users or organisations the rules refuse. The API answers
    409 (the request conflicts with the accounts as they are) unless a raise site says
    otherwise; `field` names the input at fault, when there is one."""

    status = 409
    code = "refused"


class NotTheirs(AccountError):
    """The object is not the user's: for them it does not exist (pages answer 404)."""

    status = 404
    code = "not_found"


class AddressUnavailable(AccountError):
    """An address that cannot be given to a new user, for a reason the administrator
    must not learn (an account of another organisation, a reserved address)."""

    code = "address_unavailable"


class OrganisationNotFound(AccountError):
    """No organisation answers to the reference an operator gave."""

    status = 404
    code = "not_found"
