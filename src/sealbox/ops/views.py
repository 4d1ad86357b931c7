"""Liveness and readiness endpoints for load balancers and orchestrators."""

import hmac
import ipaddress

from django.conf import settings
from django.http import Http404, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from sealbox.lib.http import client_ip
from sealbox.ops import metrics, services


@never_cache
@require_GET
def healthz(request):
    """Liveness: the process answers. No database, no storage: it never hangs."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request):
    """Readiness: database, storage (a read), task queue and workers, within 3 s."""
    results = services.readiness()
    ready = all(result.ok for result in results.values())
    body = {
        "status": "ok" if ready else "failed",
        **{name: "ok" if result.ok else "failed" for name, result in results.items()},
    }
    details = {name: result.detail for name, result in results.items() if result.detail}
    if details:
        body["details"] = details
    return JsonResponse(body, status=200 if ready else 503)


def _may_read_metrics(request) -> bool:
    token = settings.SEALBOX_METRICS_TOKEN
    given = request.META.get("HTTP_AUTHORIZATION", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    address = client_ip(request)
    if address and settings.SEALBOX_METRICS_ALLOW:
        ip = ipaddress.ip_address(address)
        return any(ip in ipaddress.ip_network(net) for net in settings.SEALBOX_METRICS_ALLOW)
    return False


@never_cache
@require_GET
def metrics_view(request):
    """Prometheus metrics, for a bearer token or an allowed address; 404 for anyone else
    (and for everyone while neither is configured), so its existence is not advertised."""
    if not _may_read_metrics(request):
        raise Http404
    return HttpResponse(metrics.render(), content_type=metrics.CONTENT_TYPE)
