from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import render

from sealbox.accounts.models import User
from sealbox.exchange import services as exchange
from sealbox.history import services
from sealbox.history.forms import HistoryFilterForm


def _filters(request, *, admin: bool) -> tuple[HistoryFilterForm, services.Filters]:
    users = None
    if admin:
        users = User.objects.filter(organisation=request.user.organisation).order_by(
            "last_name", "first_name", "email"
        )
    form = HistoryFilterForm(request.GET or None, users=users)
    if request.GET and form.is_valid():
        data = form.cleaned_data
        return form, services.Filters(
            start=data["start"], end=data["end"], search=data["q"] or "", user_id=data.get("user")
        )
    return form, services.Filters()


@login_required
def history_view(request):
    form, filters = _filters(request, admin=request.user.is_org_admin)
    if request.GET and not form.is_valid():
        result = services.Page([], "")
    else:
        result = services.page(request.user, filters, after=request.GET.get("after", ""))
    query = request.GET.copy()
    query.pop("after", None)
    return render(
        request,
        "history/history.html",
        {
            "form": form,
            "page": result,
            "columns": services.COLUMNS,
            "query": query.urlencode(),
        },
    )


@login_required
def message_view(request, public_id):
    """The message's page: details, recipients, timeline of every event, downloads."""
    try:
        message = exchange.message_for_sender(request.user, public_id)
    except exchange.ExchangeError:
        raise Http404 from None
    grants = [(g, exchange.grant_state(g)) for g in message.grants.order_by("id")]
    return render(
        request,
        "history/message.html",
        {
            "message": message,
            "grants": grants,
            "events": services.timeline(message),
            "files": services.downloads_per_file(message),
        },
    )


@login_required
def statistics_view(request):
    if not request.user.is_org_admin:
        raise PermissionDenied
    form, filters = _filters(request, admin=False)
    stats = services.statistics(request.user, filters) if not form.errors else []
    return render(request, "history/statistics.html", {"form": form, "stats": stats})
