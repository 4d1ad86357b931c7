"""The REST API fuzzed against its own OpenAPI schema: no input makes the server fail.

Schemathesis generates requests for every operation (valid and invalid bodies, paths and
query strings) and sends them to the WSGI application; any 5xx answer fails the test.
Requests carry a personal API token, so the sender's endpoints are reached too.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from sealbox.accounts import services as accounts

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    # Django closes the database connection when a WSGI request finishes; inside a test
    # transaction that would end the test's connection (Django's test client does this too).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def bearer(user):
    _token, secret = accounts.create_api_token(None, user, "fuzz", 30)
    return {"Authorization": f"Bearer {secret}"}


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_server_error(case, bearer):
    case.call_and_validate(headers=bearer, checks=[not_a_server_error])
