"""Filters of the email templates."""

from __future__ import annotations

import zoneinfo
from datetime import datetime

from django import template
from django.conf import settings
from django.utils import dateformat
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def zoned(value: datetime | None, zone: str = "") -> str:
    """4 January 2027, 17:00 (Europe/Paris): a date in the language being rendered, in
    `zone`, with the zone named (a reader elsewhere knows which 17:00 is meant)."""
    if not value:
        return ""
    try:
        tz = zoneinfo.ZoneInfo(zone or settings.TIME_ZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        tz = zoneinfo.ZoneInfo("UTC")
    local = value.astimezone(tz)
    return _("%(date)s, %(time)s (%(zone)s)") % {
        "date": dateformat.format(local, "j F Y"),
        "time": dateformat.format(local, "H:i"),
        "zone": tz.key,
    }
