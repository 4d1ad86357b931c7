"""Liveness and readiness endpoints for load balancers and orchestrators."""

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from sealbox.ops import services


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
