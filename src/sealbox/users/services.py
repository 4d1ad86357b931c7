"""Rules of user administration. Every function takes the acting administrator, checks
that they may act on the target (same organisation, administrator role) and records an
audit event naming both, in the same transaction as the change.

Each job has its module: `access` (who may act on whom), `invitations` (adding users),
`csv_import`, `edits` (an administrator's edits, disabling, deleting),
`organisation_settings`. Callers use the names gathered here.
"""

from __future__ import annotations

from sealbox.users.access import (
    active_admins,
    has_two_factor,
    list_users,
    organisation_users,
    require_admin,
    user_for_admin,
)
from sealbox.users.csv_import import (
    CSV_COLUMNS,
    CSV_MAX_BYTES,
    CSV_MAX_ROWS,
    ROLE_WORDS,
    CsvReport,
    csv_template,
    import_users,
    read_csv,
)
from sealbox.users.edits import EDIT_FIELDS, delete_user, live_messages_of, set_active, update_user
from sealbox.users.invitations import (
    INVITATION_LIFETIME,
    NewUser,
    accept_invitation,
    invite_user,
    pending_invitation,
    resend_invitation,
)
from sealbox.users.organisation_settings import (
    COLOUR,
    DOMAIN,
    LOGO_MAX_BYTES,
    LOGO_TYPES,
    ORGANISATION_FIELDS,
    check_logo,
    clean_domains,
    update_organisation,
)

__all__ = [
    "COLOUR",
    "CSV_COLUMNS",
    "CSV_MAX_BYTES",
    "CSV_MAX_ROWS",
    "CsvReport",
    "DOMAIN",
    "EDIT_FIELDS",
    "INVITATION_LIFETIME",
    "LOGO_MAX_BYTES",
    "LOGO_TYPES",
    "NewUser",
    "ORGANISATION_FIELDS",
    "ROLE_WORDS",
    "accept_invitation",
    "active_admins",
    "check_logo",
    "clean_domains",
    "csv_template",
    "delete_user",
    "has_two_factor",
    "import_users",
    "invite_user",
    "list_users",
    "live_messages_of",
    "organisation_users",
    "pending_invitation",
    "read_csv",
    "require_admin",
    "resend_invitation",
    "set_active",
    "update_organisation",
    "update_user",
    "user_for_admin",
]
