"""Sizes as people read them on a plan: decimal units (100 MB = 100,000,000 bytes)."""

from django.utils.formats import number_format
from django.utils.translation import gettext as _


def human_size(size: int) -> str:
    if size < 1000:
        return _("%(n)d bytes") % {"n": size}
    units = [_("kB"), _("MB"), _("GB"), _("TB")]
    value = size / 1000
    unit = 0
    while value >= 1000 and unit < len(units) - 1:
        value /= 1000
        unit += 1
    decimals = 0 if value >= 100 or value == int(value) else 1
    return f"{number_format(round(value, decimals), decimals)}\xa0{units[unit]}"
