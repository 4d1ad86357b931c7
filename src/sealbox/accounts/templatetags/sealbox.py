from datetime import date, datetime

from django import template
from django.utils import timezone
from django.utils.dateformat import format as format_date

register = template.Library()


@register.filter
def size(value) -> str:
    """Bytes in decimal units, as plans state them (100 MB, 2.5 GB)."""
    from sealbox.lib.formats import human_size

    return human_size(int(value or 0))


@register.filter
def userdate(value, user) -> str:
    """A date (or the date part of a moment) in the user's chosen format and time zone."""
    if not value:
        return ""
    if isinstance(value, datetime):
        value = timezone.localtime(value).date()
    pattern = getattr(user, "date_format", "Y-m-d")
    return format_date(value, pattern) if isinstance(value, date) else str(value)


@register.filter
def userdatetime(value, user) -> str:
    if not value:
        return ""
    pattern = getattr(user, "date_format", "Y-m-d")
    return format_date(timezone.localtime(value), f"{pattern} H:i")
