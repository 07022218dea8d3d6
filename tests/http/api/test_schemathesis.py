"""Property-based API tests from /openapi.json: no server errors, responses match the schema.

Schemathesis generates requests (valid and invalid) for every operation of the app's own
OpenAPI document and checks each response: no 5xx, documented status codes, bodies that match
the declared schemas and content types.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from devtools.settings import demo_settings
from tests.conftest import API_TOKEN, PUBLIC_KEY
from tests.factories import add_product, load_rules
from warranty.http.api.spec import REGISTRY
from warranty.http.app import create_app

# Our query models have cross-field rules (sku, or category and price) that OpenAPI can't
# state, so "schema-valid request rejected" is not a check we can pass honestly.
CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_schema_conformance,
          checks.negative_data_rejection]
HEADERS = {"Authorization": f"Bearer {API_TOKEN}", "X-Warranty-Key": PUBLIC_KEY}
# The Stripe webhook only ever answers 400 to unsigned input; it has tests of its own.
SKIP = {("post", "/stripe/webhook")}
create_app(demo_settings(env="test", database_url="sqlite://"))  # registers every endpoint
OPERATIONS = sorted({(ep.method, ep.path) for ep in REGISTRY} - SKIP)


def _label(op):
    return f"{op[0].upper()} {op[1]}"


@pytest.fixture
def api_schema(settings, db):
    """The app's own OpenAPI document, exercised in-process over WSGI."""
    load_rules(db)
    add_product(db, sku="TV-1", price=120000)
    app = create_app(settings)
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


@pytest.mark.parametrize("operation", OPERATIONS, ids=_label)
def test_api_conforms_to_its_schema(api_schema, operation):
    method, path = operation
    for key, value in (("<int:", "{"), ("<", "{"), (">", "}")):
        path = path.replace(key, value)
    strategy = api_schema[path][method.upper()].as_strategy()

    @given(case=strategy)
    @settings(max_examples=30, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case):
        case.call_and_validate(headers=HEADERS, checks=CHECKS)

    check()


def test_every_operation_is_exercised():
    assert len(OPERATIONS) >= 8
