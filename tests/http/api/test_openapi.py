"""/openapi.json describes every JSON endpoint with the models that validate it."""

import pytest

from warranty import reports
from warranty.http.api.spec import REGISTRY
from warranty.reports import export


def test_every_api_route_is_documented(app, client):
    doc = client.get("/openapi.json").json
    assert doc["openapi"].startswith("3.1")
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = rule.rule.replace("<int:", "{").replace("<", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in documented, (path, method)
    assert len(documented) == len(REGISTRY)


def test_request_schemas_come_from_the_models(client):
    doc = client.get("/openapi.json").json
    schemas = doc["components"]["schemas"]
    product = schemas["ProductIn"]
    assert set(product["required"]) == {"sku", "title", "category", "price"}
    assert product["properties"]["price"]["minimum"] == 0
    offers = doc["paths"]["/api/v1/offers"]["get"]
    names = {p["name"] for p in offers["parameters"]}
    assert {"sku", "category", "price"} <= names
    assert offers["security"] == [{"publicKey": []}]
    upload = doc["paths"]["/api/v1/products"]["post"]
    assert upload["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ProductUpsert")
    for ops in doc["paths"].values():
        for op in ops.values():
            for ref in _refs(op):
                assert ref.split("/")[-1] in schemas, ref


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_every_operation_has_a_success_response_schema(client):
    """Each operation's 2xx answer says what it holds: a JSON schema or a file's media type."""
    doc = client.get("/openapi.json").json
    missing = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            ok = {code: r for code, r in op["responses"].items() if code.startswith("2")}
            if not ok or not all(r.get("content") and all(
                    media.get("schema") for media in r["content"].values())
                    for r in ok.values()):
                missing.append(f"{method.upper()} {path}")
    assert missing == []


def test_the_document_is_valid_openapi(client):
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

    doc = client.get("/openapi.json").json
    validate(doc)  # OpenAPI 3.1 (picked from the "openapi" field); raises on any problem
    broken = {**doc, "paths": {"/x": {"get": {"responses": {"200": {"content": 5}}}}}}
    with pytest.raises(OpenAPIValidationError):
        validate(broken)


def test_a_report_name_is_one_of_the_registered_reports(client):
    op = client.get("/openapi.json").json["paths"]["/api/v1/reports/{name}"]["get"]
    (name,) = [p for p in op["parameters"] if p["name"] == "name"]
    assert name["schema"]["enum"] == reports.names()
    assert {"finance", "journal", "retention"} <= set(name["schema"]["enum"])
    content = op["responses"]["200"]["content"]
    assert content["application/json"]["schema"]["$ref"].endswith("/ReportDocument")
    assert set(content) == {"application/json", "text/csv", export.FORMATS["xlsx"]}
