"""The error exchange's rules raise (envelopes' rules raise it too)."""

from sealbox.lib.errors import SealboxError


class ExchangeError(SealboxError):
    """A message, grant, upload or envelope request the rules refuse."""
