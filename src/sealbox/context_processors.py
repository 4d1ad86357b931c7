from django.urls import reverse
from django.utils.translation import gettext_lazy as _


def navigation(request) -> dict:
    """The top navigation: only features that exist and that this user may use."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    brand = getattr(user, "organisation", None)
    items = [
        (_("Send a secure email"), reverse("exchange:send")),
        (_("Secure envelopes"), reverse("envelopes:list")),
        (_("History"), reverse("history:history")),
        (_("Account"), reverse("accounts:account")),
    ]
    if getattr(user, "is_org_admin", False):
        items.append((_("Users"), reverse("users:list")))
    path = request.path
    return {
        "brand_organisation": brand,
        "nav_items": [
            {"label": label, "url": url, "current": path.startswith(url)} for label, url in items
        ],
    }
