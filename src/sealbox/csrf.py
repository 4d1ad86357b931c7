"""CSRF protection that works with `Referrer-Policy: no-referrer`.

Under that policy browsers send `Origin: null` on same-site form posts (and no Referer),
which Django's origin check refuses. Fetch Metadata tells us what the browser knows:
when it says the request comes from this very origin (`Sec-Fetch-Site: same-origin`), a
null Origin is read as our own origin. The CSRF token is still required as always.
"""

from django.middleware.csrf import CsrfViewMiddleware
from ninja.errors import HttpError

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class SealboxCsrfViewMiddleware(CsrfViewMiddleware):
    def process_view(self, request, callback, callback_args, callback_kwargs):
        meta = request.META
        if meta.get("HTTP_ORIGIN") == "null" and meta.get("HTTP_SEC_FETCH_SITE") == "same-origin":
            meta["HTTP_ORIGIN"] = f"{request.scheme}://{request.get_host()}"
        return super().process_view(request, callback, callback_args, callback_kwargs)


def rejected(request) -> bool:
    """Run the CSRF check for an API call (ninja views are exempt from the middleware)."""
    request.csrf_processing_done = False
    middleware = SealboxCsrfViewMiddleware(lambda r: None)
    return middleware.process_view(request, None, (), {}) is not None


def public_csrf(request) -> bool:
    """The `auth` of public (recipient) API calls: no account, but the page's CSRF token.

    Here rather than in `sealbox.api`: the apps' routers use it, and api (which collects
    the routers) sits above them.
    """
    if request.method not in SAFE_METHODS and rejected(request):
        raise HttpError(403, "CSRF check failed: reload the page and try again.")
    return True
