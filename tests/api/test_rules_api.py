"""Uploading and reading pricing rule versions."""

from tests.factories import rules_doc


def test_upload_creates_versions(client, staff_headers):
    first = client.post("/api/v1/rule-sets", json={"rules": rules_doc(), "note": "v1"},
                        headers=staff_headers)
    assert first.status_code == 201 and first.json["version"] == 1
    assert first.json["created_by"] == "admin-token"
    second = client.post("/api/v1/rule-sets", json={"rules": rules_doc(deductible=3000)},
                         headers=staff_headers)
    assert second.json["version"] == 2
    listed = client.get("/api/v1/rule-sets", headers=staff_headers).json["versions"]
    assert [v["version"] for v in listed] == [2, 1]
    one = client.get("/api/v1/rule-sets/1", headers=staff_headers).json
    assert one["rules"]["categories"]["electronics"]["deductible"] == 0
    assert client.get("/api/v1/rule-sets/9", headers=staff_headers).status_code == 404


def test_invalid_rules_get_every_problem(client, staff_headers):
    doc = rules_doc()
    doc["categories"]["electronics"]["bands"][1]["min"] = 45000
    res = client.post("/api/v1/rule-sets", json={"rules": doc}, headers=staff_headers)
    assert res.status_code == 422
    assert res.json["error"]["code"] == "invalid_rules"
    assert "bands overlap" in res.json["error"]["message"]
    assert res.json["error"]["details"][0]["at"] == "categories.electronics"
    assert client.get("/api/v1/rule-sets", headers=staff_headers).json["versions"] == []


def test_rules_in_another_currency_are_refused(client, staff_headers):
    res = client.post("/api/v1/rule-sets", json={"rules": rules_doc("usd")},
                      headers=staff_headers)
    assert res.status_code == 422 and res.json["error"]["code"] == "currency_mismatch"
