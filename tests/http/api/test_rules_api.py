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


def test_amounts_beyond_what_a_money_column_holds_are_refused(client, staff_headers):
    """Every amount of a rule set ends in a 64-bit money column (plan prices, contracts'
    deductibles) or in a JSON answer: one beyond the store's limit (10^12 minor units) is
    refused when the rules are uploaded, never at checkout or when a paid order makes its
    contracts."""
    big = 10**12 + 1
    electronics = rules_doc()["categories"]["electronics"]
    cases = {
        "deductible": rules_doc(deductible=2**63),
        "fixed": rules_doc(bands=[{"min": 0, "max": None, "prices": {
            "standard-36": {"fixed": 10**20}, "accident-36": {"fixed": 2980}}}]),
        "floor": rules_doc(bands=[{"min": 0, "max": None, "prices": {
            "standard-36": {"rate": "0.05", "floor": big}, "accident-36": {"fixed": 2980}}}]),
        "max": rules_doc(bands=[{**electronics["bands"][0], "min": 0},
                                {**electronics["bands"][1], "max": big + 1}]),
    }
    for field, doc in cases.items():
        res = client.post("/api/v1/rule-sets", json={"rules": doc}, headers=staff_headers)
        assert res.status_code == 422, (field, res.status_code, res.get_data()[:300])
        assert res.json["error"]["code"] == "invalid_rules"
        assert field in str(res.json["error"]["details"]), res.json
    assert client.get("/api/v1/rule-sets", headers=staff_headers).json["versions"] == []
    doc = {**rules_doc(), "rounding_step": 2**70}
    res = client.post("/api/v1/rule-sets", json={"rules": doc}, headers=staff_headers)
    assert res.status_code == 422 and "rounding_step" in str(res.json["error"]["details"])
