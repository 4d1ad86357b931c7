import tempfile

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.text import slugify
from django.utils.translation import gettext as _

from sealbox.accounts.models import User
from sealbox.audit import exports, sealing
from sealbox.audit import services as audit
from sealbox.audit.actions import Action
from sealbox.exchange import services as exchange
from sealbox.history import exports as history_exports
from sealbox.history import services
from sealbox.history.forms import HistoryFilterForm
from sealbox.lib import clock


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
            "exports": export_links(request.user),
        },
    )


def export_links(user: User) -> list[dict]:
    links = [
        {"label": "CSV", "url": reverse("history:export", args=["csv"])},
        {"label": "Excel", "url": reverse("history:export", args=["xlsx"])},
        {"label": "PDF", "url": reverse("history:export", args=["pdf"])},
    ]
    if user.is_org_admin:
        links.append(
            {"label": _("Audit log (JSON Lines)"), "url": reverse("history:export", args=["jsonl"])}
        )
    return links


EXPORT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
    "jsonl": "application/x-ndjson",
}


@login_required
def export_view(request, kind: str):
    """The current selection as CSV, Excel or sealed PDF; the audit log as JSON Lines."""
    if kind not in EXPORT_TYPES:
        raise Http404
    if kind == "jsonl" and not request.user.is_org_admin:
        raise PermissionDenied
    form, filters = _filters(request, admin=request.user.is_org_admin)
    if request.GET and not form.is_valid():
        errors = " ".join(e for field_errors in form.errors.values() for e in field_errors)
        return HttpResponse(errors, status=400, content_type="text/plain; charset=utf-8")
    user = request.user
    if kind in ("pdf", "jsonl"):
        try:
            sealing.check_usable(user.organisation)  # sealed or signed: checked first
        except sealing.SealingKeyUnavailable:
            return HttpResponse(
                _(
                    "The organisation's seal cannot be used: the server's secret key "
                    "changed. Ask the operator to put the former key back in "
                    "SEALBOX_SECRET_KEY_FALLBACKS."
                ),
                status=503,
                content_type="text/plain; charset=utf-8",
            )
    with transaction.atomic():
        audit.record(
            Action.HISTORY_EXPORTED,
            actor=user,
            request=request,
            details={
                "format": kind,
                "start": str(filters.start or ""),
                "end": str(filters.end or ""),
                "search": filters.search,
                "user": filters.user_id,
            },
        )
    stamp = clock.now().strftime("%Y%m%d-%H%M")
    name = f"sealbox-{slugify(user.organisation.name)}-{stamp}.{kind}"
    if kind == "csv":
        rows = history_exports.export_rows(user, filters)
        content = exports.stream_csv(history_exports.export_headers(), rows)
        response = StreamingHttpResponse(content, content_type=EXPORT_TYPES[kind])
    elif kind == "jsonl":
        start, end = history_exports.export_range(user, filters)
        content = exports.stream_events_jsonl(user.organisation, start, end)
        response = StreamingHttpResponse(content, content_type=EXPORT_TYPES[kind])
    else:
        # Written to a temporary file on disk, then streamed: never whole in memory.
        spool = tempfile.TemporaryFile()  # noqa: SIM115 - FileResponse closes it
        rows = history_exports.export_rows(user, filters)
        if kind == "xlsx":
            exports.write_xlsx(
                history_exports.export_headers(), rows, spool, sheet_title=_("History")
            )
        else:
            title = _("Sealbox activity log — %(organisation)s") % {
                "organisation": user.organisation.name
            }
            exports.write_pdf(
                title,
                export_subtitle(filters),
                history_exports.export_headers(),
                rows,
                spool,
                organisation=user.organisation,
            )
        spool.seek(0)
        response = FileResponse(spool, content_type=EXPORT_TYPES[kind])
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response


def export_subtitle(filters: services.Filters) -> str:
    parts = []
    if filters.start or filters.end:
        parts.append(
            _("From %(start)s to %(end)s")
            % {"start": filters.start or "…", "end": filters.end or "…"}
        )
    if filters.search:
        parts.append(_("Search: %(term)s") % {"term": filters.search})
    return " · ".join(parts) or _("All messages")


@login_required
def certificate_view(request):
    """The organisation's sealing certificate, to check the seal of a PDF export."""
    pem = sealing.certificate_pem(request.user.organisation)
    response = HttpResponse(pem, content_type="application/x-pem-file")
    name = slugify(request.user.organisation.name)
    response["Content-Disposition"] = f'attachment; filename="sealbox-seal-{name}.pem"'
    return response


@login_required
def message_view(request, public_id):
    """The message's page: details, recipients, timeline of every event, downloads."""
    try:
        message = exchange.message_for_sender(request.user, public_id)
    except exchange.ExchangeError:
        raise Http404 from None
    undelivered = services.undelivered_grants([message.pk])
    grants = [
        (g, exchange.grant_state(g), g.pk in undelivered) for g in message.grants.order_by("id")
    ]
    return render(
        request,
        "history/message.html",
        {
            "message": message,
            "grants": grants,
            "events": services.timeline(message),
            "files": services.downloads_per_file(message),
            "replies": message.replies.select_related("replied_by").order_by("sent_at"),
        },
    )


@login_required
def statistics_view(request):
    if not request.user.is_org_admin:
        raise PermissionDenied
    form, filters = _filters(request, admin=False)
    stats = services.statistics(request.user, filters) if not form.errors else []
    return render(request, "history/statistics.html", {"form": form, "stats": stats})
