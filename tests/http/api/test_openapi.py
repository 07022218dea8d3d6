"""/openapi.json describes every JSON endpoint with the models that validate it."""

from warranty.api.spec import REGISTRY


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
