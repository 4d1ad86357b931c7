"""The REST API under /api/v1/ (OpenAPI at /api/v1/openapi.json, docs at /api/v1/docs)."""

from __future__ import annotations

from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from sealbox.api.auth import session_auth, token_auth
from sealbox.lib.errors import SealboxError

api = NinjaAPI(
    title="Sealbox API",
    version="1",
    description="Secure messages with end-to-end encryption. Content is encrypted on the "
    "client (RFC 8188 aes128gcm); the server only stores ciphertext.",
    auth=[token_auth, session_auth],
    urls_namespace="api",
    docs_url="/docs",
)


def error_body(code: str, message: str, **extra) -> dict:
    return {"error": code, "message": message, **{k: v for k, v in extra.items() if v}}


@api.exception_handler(SealboxError)
def refused(request, error: SealboxError):
    """Every app's refusal, whatever its subclass: one body, one Retry-After."""
    response = api.create_response(
        request,
        error_body(error.code, error.message, field=error.field, retry_after=error.retry_after),
        status=error.status,
    )
    if error.retry_after:
        response["Retry-After"] = str(error.retry_after)
    return response


@api.exception_handler(ValidationError)
def validation_error(request, error: ValidationError):
    details = [
        {"field": ".".join(str(p) for p in item.get("loc", [])[1:]), "message": item["msg"]}
        for item in error.errors
    ]
    first = details[0] if details else {"field": "", "message": "invalid input"}
    message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
    return api.create_response(request, error_body("invalid", message, details=details), status=422)


@api.exception_handler(AuthenticationError)
def authentication_error(request, error):
    return api.create_response(
        request, error_body("unauthenticated", "Log in to use this part of the API."), status=401
    )


@api.exception_handler(HttpError)
def http_error(request, error: HttpError):
    return api.create_response(request, error_body("error", str(error)), status=error.status_code)


@api.exception_handler(Http404)
def not_found(request, error):
    return api.create_response(request, error_body("not_found", "Not found."), status=404)


api.add_router("/", "sealbox.exchange.api.router")
api.add_router("/", "sealbox.users.api.router")
api.add_router("/", "sealbox.envelopes.api.router")
