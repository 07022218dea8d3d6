"""Arm assignment and the batched, validated, rate-limited event intake."""

import json
import time

import pytest
from sqlmodel import select

from tests.factories import load_rules, signed_visitor
from warranty.experiment import arms
from warranty.experiment.models import VisitorEvent

SALT = "holdout-1"
VID = signed_visitor("vtest00001")


def _visitor(arm: str, share: float = 0.10) -> str:
    """A signed visitor id that the server puts in ``arm``."""
    return next(v for v in (signed_visitor(f"vtest{n:05d}") for n in range(10000))
                if arms.assign_arm(v, salt=SALT, share=share) == arm)


def test_assignment_is_decided_by_the_server(client, store_key, settings):
    for arm in ("holdout", "treatment"):
        vid = _visitor(arm)
        res = client.get(f"/api/v1/experiment/assignment?visitor_id={vid}", headers=store_key)
        assert res.status_code == 200, res.json
        assert res.json == {"visitor_id": vid, "issued": False,
                            "experiment": settings.experiment_salt,
                            "arm": arm, "show_offers": arm == "treatment",
                            "holdout_share": settings.holdout_share}


@pytest.mark.parametrize("query", ["visitor_id=short", "visitor_id=" + "x" * 65,
                                   "visitor_id=has%20space", "visitor_id=%3Cscript%3E"])
def test_assignment_refuses_malformed_ids(client, store_key, query):
    res = client.get(f"/api/v1/experiment/assignment?{query}", headers=store_key)
    assert res.status_code == 422 and res.json["error"]["code"] == "invalid_request"


def test_assignment_needs_the_public_key(client):
    res = client.get(f"/api/v1/experiment/assignment?visitor_id={_visitor('holdout')}")
    assert res.status_code == 401


def test_events_are_stored_with_the_servers_arm_and_mapped_category(client, db, store_key):
    load_rules(db)
    vid = _visitor("holdout")
    now_ms = int(time.time() * 1000)
    body = {"visitor_id": vid, "events": [
        {"type": "exposure", "placement": "product_page", "sku": "TV-1", "category": "tv",
         "price": 120000, "at": now_ms - 1000},
        {"type": "offer_selected", "placement": "cart", "sku": "TV-1", "category": "tv",
         "price": 120000, "plan_code": "standard-36", "plan_price": 6000, "quantity": 2,
         "at": now_ms + 10 * 86400 * 1000},
        {"type": "checkout_started", "sku": "TV-1", "order_id": "ord_0123abcd"},
    ]}
    res = client.post("/api/v1/events", json=body, headers=store_key)
    assert res.status_code == 202, res.json
    assert res.json == {"accepted": 3, "arm": "holdout"}
    rows = db.exec(select(VisitorEvent).order_by(VisitorEvent.id)).all()
    assert [r.type for r in rows] == ["exposure", "offer_selected", "checkout_started"]
    assert {r.arm for r in rows} == {"holdout"} and {r.visitor_id for r in rows} == {vid}
    assert rows[0].warranty_category == "electronics" and rows[0].price == 120000
    assert (rows[1].plan_code, rows[1].plan_price, rows[1].quantity) == ("standard-36", 6000, 2)
    assert rows[1].occurred_at <= rows[1].received_at  # a client clock ahead is clamped
    assert abs((rows[0].received_at - rows[0].occurred_at).total_seconds() - 1) < 2
    assert rows[2].order_public_id == "ord_0123abcd" and rows[2].placement is None


def test_a_client_cannot_choose_its_arm(client, db, store_key):
    vid = _visitor("treatment")
    res = client.post("/api/v1/events", headers=store_key, json={
        "visitor_id": vid, "events": [{"type": "offer_viewed", "arm": "holdout"}]})
    assert res.status_code == 422  # unknown fields are refused
    res = client.post("/api/v1/events", headers=store_key, json={
        "visitor_id": vid, "arm": "holdout", "events": [{"type": "offer_viewed"}]})
    assert res.status_code == 422
    assert db.exec(select(VisitorEvent)).all() == []


def test_beacon_bodies_as_text_plain_with_the_key_in_the_query(client, db, store_key):
    vid = _visitor("treatment")
    body = json.dumps({"visitor_id": vid, "events": [
        {"type": "offer_viewed", "placement": "cart", "sku": "X", "plan_code": "accident-36",
         "plan_price": 2980}]})
    res = client.post(f"/api/v1/events?key={store_key['X-Warranty-Key']}", data=body,
                      content_type="text/plain;charset=UTF-8")
    assert res.status_code == 202, res.json
    row = db.exec(select(VisitorEvent)).one()
    assert (row.arm, row.plan_price, row.warranty_category) == ("treatment", 2980, None)


@pytest.mark.parametrize(("data", "content_type", "status", "code"), [
    ("{not json", "text/plain", 400, "invalid_json"),
    ("{}", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    (json.dumps({"visitor_id": VID, "events": []}), "text/plain", 422,
     "invalid_request"),
    (json.dumps({"visitor_id": VID, "events": [{"type": "offer_viewed"}] * 101}),
     "application/json", 422, "invalid_request"),
    (json.dumps({"visitor_id": VID, "events": [{"type": "purchase"}]}),
     "application/json", 422, "invalid_request"),
    (json.dumps({"visitor_id": VID, "events": [
        {"type": "offer_viewed", "placement": "homepage"}]}), "application/json", 422,
     "invalid_request"),
    (json.dumps({"visitor_id": VID, "events": [
        {"type": "offer_viewed", "price": -5}]}), "application/json", 422, "invalid_request"),
    (json.dumps({"visitor_id": VID, "events": [
        {"type": "offer_viewed", "at": "yesterday"}]}), "application/json", 422,
     "invalid_request"),
    (json.dumps({"visitor_id": VID, "events": [
        {"type": "checkout_started", "order_id": "'; drop table"}]}), "application/json", 422,
     "invalid_request"),
    (json.dumps([1, 2]), "application/json", 422, "invalid_request"),
])
def test_malformed_batches_are_refused_whole(client, db, store_key, data, content_type, status,
                                             code):
    res = client.post("/api/v1/events", data=data, content_type=content_type, headers=store_key)
    assert res.status_code == status, res.json
    assert res.json["error"]["code"] == code
    assert db.exec(select(VisitorEvent)).all() == []


def test_a_problem_names_the_event(client, store_key):
    res = client.post("/api/v1/events", headers=store_key, json={
        "visitor_id": VID,
        "events": [{"type": "offer_viewed"}, {"type": "offer_viewed", "quantity": 0}]})
    assert res.status_code == 422
    assert [d["at"] for d in res.json["error"]["details"]] == ["events.1.quantity"]


def test_intake_is_rate_limited_per_visitor_and_per_address(app, settings, db, store_key):
    app.config["SETTINGS"] = settings.model_copy(update={
        "events_rate_per_visitor": 0.001, "events_burst_per_visitor": 150,
        "events_rate_per_ip": 0.001, "events_burst_per_ip": 250})
    client = app.test_client()

    def send(vid: str, n: int):
        return client.post("/api/v1/events", headers=store_key, json={
            "visitor_id": vid, "events": [{"type": "offer_viewed"}] * n})

    one, two, three = (signed_visitor(f"vtest-{n}") for n in ("one", "two", "three"))
    assert send(one, 100).status_code == 202
    limited = send(one, 100)
    assert limited.status_code == 429 and limited.json["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    assert send(two, 100).status_code == 202  # another visitor, same address
    assert send(three, 100).status_code == 429  # the address's burst is spent
    assert len(db.exec(select(VisitorEvent)).all()) == 200


def test_events_endpoint_is_documented_with_both_body_types(client):
    doc = client.get("/openapi.json").json
    op = doc["paths"]["/api/v1/events"]["post"]
    assert set(op["requestBody"]["content"]) == {"application/json", "text/plain"}
    assert "429" in op["responses"] and "202" in op["responses"]


@pytest.mark.parametrize("field", ["sku", "category", "plan_code"])
def test_control_characters_are_refused_not_stored(client, db, store_key, field):
    res = client.post("/api/v1/events", headers=store_key, json={
        "visitor_id": VID, "events": [{"type": "offer_viewed", field: "a\x00b"}]})
    assert res.status_code == 422 and res.json["error"]["details"][0]["at"] == f"events.0.{field}"
    res = client.post("/api/v1/offers/batch", headers=store_key,
                      json={"items": [{"sku": "TV\x00"}]})
    assert res.status_code == 422


def test_assignment_issues_a_signed_id_to_visitors_without_one(client, store_key, settings):
    for query in ("", "?visitor_id=v0123456789abcdef0123456789abcdef",
                  "?visitor_id=" + signed_visitor("vtest00001", secret="another-key")):
        res = client.get("/api/v1/experiment/assignment" + query, headers=store_key)
        assert res.status_code == 200 and res.json["issued"] is True
        vid = res.json["visitor_id"]
        assert arms.visitor_id_problem(vid, settings.secret_key) is None
        assert res.json["arm"] == arms.assign_arm(vid, salt=settings.experiment_salt,
                                                        share=settings.holdout_share)
        again = client.get(f"/api/v1/experiment/assignment?visitor_id={vid}",
                           headers=store_key).json
        assert (again["visitor_id"], again["issued"], again["arm"]) == (vid, False,
                                                                       res.json["arm"])
    issued = {client.get("/api/v1/experiment/assignment", headers=store_key).json["visitor_id"]
              for _ in range(20)}
    assert len(issued) == 20  # random: nobody gets to choose an id, or its arm


@pytest.mark.parametrize(("vid", "code"), [
    ("v0123456789abcdef0123456789abcdef", "unsigned_visitor_id"),  # the old embed's ids
    ("attacker-chosen-holdout-1", "unsigned_visitor_id"),
    (signed_visitor("vtest00001", secret="another-service-key"), "foreign_visitor_id"),
    (VID[:-1] + ("A" if VID[-1] != "A" else "B"), "foreign_visitor_id"),  # altered signature
])
def test_events_with_an_id_the_service_did_not_sign_are_refused_and_counted(
        client, db, store_key, staff_headers, vid, code):
    for size in (3, 2):
        res = client.post("/api/v1/events", headers=store_key, json={
            "visitor_id": vid, "events": [{"type": "exposure", "placement": "cart"}] * size})
        assert res.status_code == 422 and res.json["error"]["code"] == code
        assert res.json["error"]["details"] == [{"at": "visitor_id",
                                                 "message": code.split("_")[0]}]
    assert db.exec(select(VisitorEvent)).all() == []
    today = experiment_today(client)
    report = client.get(f"/api/v1/reports/conversion?from={today}&to={today}",
                        headers=staff_headers).json
    reason = code.split("_")[0]
    assert report["refused_visitor_ids"] == {
        "events": 5, "checkouts": 0,
        "by_day": [{"date": today, "source": "events", "reason": reason, "count": 5}]}
    assert all(row["visitors"] == 0 for row in report["rows"])


def experiment_today(client) -> str:
    """Today in the app's store time zone, ISO."""
    from warranty.core.dates import store_today

    return store_today(client.application.config["SETTINGS"].timezone).isoformat()


def test_refused_counts_add_up_under_concurrent_requests(settings, db, store_key, staff_headers):
    import threading

    import requests

    from tests.conftest import POSTGRES_URL, serve
    from warranty.http.app import create_app

    if not settings.database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: concurrent upserts of one day's count (runs in the "
                    "PostgreSQL pass, WARRANTY_TEST_POSTGRES_URL)")
    assert POSTGRES_URL
    app = create_app(settings.model_copy(update={"rate_limits_enabled": False}))
    barrier = threading.Barrier(8)
    answers = []

    def send():
        with requests.Session() as http:
            barrier.wait()
            answers.append(http.post(f"{base}/api/v1/events", headers=store_key, timeout=30,
                                     json={"visitor_id": "unsigned-visitor-1",
                                           "events": [{"type": "exposure"}] * 4}).status_code)

    with serve(app) as base:
        threads = [threading.Thread(target=send) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert answers == [422] * 8
    today = experiment_today(app.test_client())
    report = app.test_client().get(f"/api/v1/reports/conversion?from={today}&to={today}",
                                   headers=staff_headers).json
    assert report["refused_visitor_ids"]["events"] == 32
