"""Staff contract endpoints: search, detail, transfer, refused changes, JSON errors."""

from datetime import date, timedelta

import pytest
from sqlmodel import select

from tests.factories import paid_order
from warranty.contracts import lifecycle as contracts
from warranty.contracts.models import ContractEvent
from warranty.core.dates import store_today
from warranty.notify.models import MailMessage, OutboundWebhook
from warranty.worker import run_expiry


@pytest.fixture
def three_orders(db):
    """Contracts of three customers on different dates (committed)."""
    first = paid_order(db, email="ann@example.com", order_ref="S-1",
                       purchase_date=date(2026, 1, 10))
    second = paid_order(db, email="bob@example.com", order_ref="S-2", quantity=2,
                        plan_quantity=2, purchase_date=date(2026, 3, 1))
    third = paid_order(db, email="Ann@Example.com", order_ref="S-3",
                       purchase_date=date(2026, 5, 20))
    return first, second, third


def ids(res):
    """Contract ids of a search answer."""
    return [item["id"] for item in res.json["items"]]


def test_search_by_email_order_status_and_dates(client, staff_headers, three_orders):
    (o1, (c1,)), (o2, (c2, c3)), (o3, (c4,)) = three_orders
    every = client.get("/api/v1/contracts", headers=staff_headers)
    assert every.status_code == 200 and every.json["total"] == 4
    assert ids(every) == [c4.public_id, c3.public_id, c2.public_id, c1.public_id]
    by_email = client.get("/api/v1/contracts?email=ANN@example.com", headers=staff_headers)
    assert ids(by_email) == [c4.public_id, c1.public_id]
    assert ids(client.get("/api/v1/contracts?order=S-2", headers=staff_headers)) == [
        c3.public_id, c2.public_id]
    assert ids(client.get(f"/api/v1/contracts?order={o3.public_id}",
                          headers=staff_headers)) == [c4.public_id]
    dated = client.get("/api/v1/contracts?purchased_from=2026-02-01&purchased_to=2026-05-19",
                       headers=staff_headers)
    assert ids(dated) == [c3.public_id, c2.public_id]
    assert client.get("/api/v1/contracts?status=cancelled",
                      headers=staff_headers).json["total"] == 0
    page = client.get("/api/v1/contracts?per_page=3&page=2", headers=staff_headers).json
    assert (page["total"], page["page"], [i["id"] for i in page["items"]]) == (
        4, 2, [c1.public_id])
    item = every.json["items"][-1]
    assert (item["store_order_ref"], item["price"], item["term_end"]) == ("S-1", 6000,
                                                                          "2029-01-09")


def test_transfer_changes_owner_with_audit_mail_and_event(client, db, staff_headers):
    order, (contract,) = paid_order(db, email="old@example.com")
    res = client.post(f"/api/v1/contracts/{contract.public_id}/transfer", headers=staff_headers,
                      json={"email": " new@example.com ", "reason": "sold the TV"})
    assert res.status_code == 200, res.json
    assert res.json["contract"]["customer_email"] == "new@example.com"
    assert res.json["contract"]["status"] == "active"
    last = res.json["history"][-1]
    assert (last["action"], last["from_status"], last["to_status"], last["reason"]) == (
        "transferred", "active", "active", "sold the TV")
    assert last["data"] == {"from": "old@example.com", "to": "new@example.com"}
    mails = db.exec(select(MailMessage.to, MailMessage.kind).order_by(MailMessage.id)).all()
    assert mails == [("new@example.com", "transfer_in"), ("old@example.com", "transfer_out")]
    event = db.exec(select(OutboundWebhook)).one()
    assert event.type == "contract.transferred"
    assert event.payload["data"]["previous_email"] == "old@example.com"
    db.commit()
    found = client.get("/api/v1/contracts?email=new@example.com", headers=staff_headers)
    assert ids(found) == [contract.public_id]
    same = client.post(f"/api/v1/contracts/{contract.public_id}/transfer",
                       headers=staff_headers, json={"email": "NEW@example.com"})
    assert same.status_code == 409 and same.json["error"]["code"] == "same_owner"


def test_every_transition_outside_the_table_is_refused_without_an_audit_row(db):
    statuses = ["active", "cancelled", "expired", "fulfilled"]
    for from_status in statuses:
        for to_status in statuses:
            if to_status in contracts.TRANSITIONS[from_status]:
                continue
            _, (contract,) = paid_order(db, order_ref=f"T-{from_status}-{to_status}")
            contract.status = from_status
            db.add(contract)
            db.commit()
            with pytest.raises(contracts.TransitionRefused):
                contracts.transition(session=db, contract=contract, to_status=to_status,
                                     actor="t", action="try")
            db.rollback()
            events = db.exec(select(ContractEvent).where(
                ContractEvent.contract_id == contract.id)).all()
            assert [e.action for e in events] == ["created"]
            db.commit()


def test_staff_cannot_cancel_quote_or_transfer_a_closed_contract(client, db, staff_headers):
    _, (ended,) = paid_order(db, order_ref="OLD", purchase_date=date(2020, 1, 10))
    _, (used_up,) = paid_order(db, order_ref="USED")
    contracts.transition(session=db, contract=used_up, to_status="fulfilled", actor="claims",
                         action="fulfilled", reason="replaced")
    db.commit()
    settings = client.application.config["SETTINGS"]
    assert run_expiry(settings=settings, limit=10) == 1
    db.refresh(ended)
    assert ended.status == "expired"
    db.commit()
    for contract, status in ((ended, "expired"), (used_up, "fulfilled")):
        base = f"/api/v1/contracts/{contract.public_id}"
        for method, path, kwargs in (
                ("get", "/cancellation-quote", {}),
                ("post", "/cancel", {"json": {"amount": 0, "reason": "x"}}),
                ("post", "/transfer", {"json": {"email": "x@example.com"}})):
            res = getattr(client, method)(base + path, headers=staff_headers, **kwargs)
            assert res.status_code == 409, (status, path, res.json)
            if status == "expired" and path != "/transfer":
                # An expired plan is cancelled only as of a day of its term: today is not.
                assert res.json["error"]["code"] == "term_ended"
                assert str(ended.term_end) in res.json["error"]["message"]
                continue
            assert res.json["error"]["code"] == "transition_refused"
            assert status in res.json["error"]["message"]
    assert client.get(f"/api/v1/contracts/{ended.public_id}",
                      headers=staff_headers).json["history"][-1]["action"] == "expired"


def test_cancelled_contract_cannot_be_cancelled_again(client, db, staff_headers):
    today = store_today(client.application.config["SETTINGS"].timezone)
    order, (contract,) = paid_order(db, purchase_date=today - timedelta(days=400))
    # Pro rata with a ¥0 refund never calls Stripe (claims paid exceed it).
    from warranty.changes import cancellation

    cancellation.cancel_contract(session=db, settings=client.application.config["SETTINGS"],
                                     contract_id=contract.public_id, cancel_date=today,
                                     today=today, actor="t", reason="r", claims_paid=99_999)
    db.commit()
    again = client.post(f"/api/v1/contracts/{contract.public_id}/cancel",
                        headers=staff_headers, json={"amount": 0, "reason": "again"})
    assert again.status_code == 409 and again.json["error"]["code"] == "transition_refused"
    detail = client.get(f"/api/v1/contracts/{contract.public_id}", headers=staff_headers).json
    assert detail["refund"]["status"] == "not_needed" and detail["refund"]["amount"] == 0


@pytest.fixture
def one_contract(db):
    """A contract bought ten days ago (committed)."""
    return paid_order(db, purchase_date=date.today() - timedelta(days=10))


def _bad_requests(order_id, contract_id):
    """(method, path, kwargs, status, code) for every endpoint this module tests."""
    c = f"/api/v1/contracts/{contract_id}"
    r = f"/api/v1/orders/{order_id}/lines"
    return [
        ("get", "/api/v1/contracts?page=0", {}, 422, "invalid_request"),
        ("get", "/api/v1/contracts?per_page=1000", {}, 422, "invalid_request"),
        ("get", "/api/v1/contracts?status=lost", {}, 422, "invalid_request"),
        ("get", "/api/v1/contracts?purchased_from=2026-13-01", {}, 422, "invalid_request"),
        ("get", "/api/v1/contracts?purchased_from=2026-02-01&purchased_to=2026-01-01", {}, 422,
         "invalid_request"),
        ("get", "/api/v1/contracts?email=" + "a" * 400, {}, 422, "invalid_request"),
        ("get", "/api/v1/contracts/ct_nope", {}, 404, "unknown_contract"),
        ("get", "/api/v1/contracts/ct_nope/cancellation-quote", {}, 404, "unknown_contract"),
        ("get", c + "/cancellation-quote?cancel_date=tomorrow", {}, 422, "invalid_request"),
        ("get", c + "/cancellation-quote?cancel_date=2999-01-01", {}, 422,
         "invalid_cancel_date"),
        ("get", c + "/cancellation-quote?cancel_date=2000-01-01", {}, 422,
         "invalid_cancel_date"),
        ("post", c + "/cancel", {"data": "{", "content_type": "application/json"}, 400,
         "invalid_json"),
        ("post", c + "/cancel", {"data": "amount=1"}, 415, "unsupported_media_type"),
        ("post", c + "/cancel", {"json": {"amount": 6000}}, 422, "invalid_request"),
        ("post", c + "/cancel", {"json": {"amount": -1, "reason": "x"}}, 422,
         "invalid_request"),
        ("post", c + "/cancel", {"json": {"amount": "lots", "reason": "x"}}, 422,
         "invalid_request"),
        ("post", c + "/cancel", {"json": {"amount": 6000, "reason": ""}}, 422,
         "invalid_request"),
        ("post", c + "/cancel", {"json": {"amount": 5999, "reason": "x"}}, 409,
         "quote_changed"),
        ("post", c + "/cancel", {"json": {"amount": 1, "reason": "x",
                                          "cancel_date": "2999-01-01"}}, 422,
         "invalid_cancel_date"),
        ("post", "/api/v1/contracts/ct_nope/cancel", {"json": {"amount": 1, "reason": "x"}},
         404, "unknown_contract"),
        ("post", c + "/transfer", {"json": {"email": "nope"}}, 422, "invalid_request"),
        ("post", c + "/transfer", {"json": {}}, 422, "invalid_request"),
        ("post", c + "/transfer", {"json": {"email": "a@example.com", "reason": "x" * 1001}},
         422, "invalid_request"),
        ("post", "/api/v1/contracts/ct_nope/transfer", {"json": {"email": "a@example.com"}},
         404, "unknown_contract"),
        ("post", r + "/1/returns", {"json": {"quantity": 0}}, 422, "invalid_request"),
        ("post", r + "/1/returns", {"json": {"quantity": 2}}, 409, "over_return"),
        ("post", r + "/2/returns", {"json": {"quantity": 1}}, 404, "unknown_line"),
        ("post", r + "/99/returns", {"json": {"quantity": 1}}, 404, "unknown_line"),
        ("post", r + "/x/returns", {"json": {"quantity": 1}}, 404, "not_found"),
        ("post", "/api/v1/orders/ord_nope/lines/1/returns", {"json": {"quantity": 1}}, 404,
         "unknown_order"),
    ]


def test_bad_input_on_every_contract_endpoint_is_a_json_error(client, staff_headers,
                                                              one_contract):
    order, (contract,) = one_contract
    for method, path, kwargs, status, code in _bad_requests(order.public_id,
                                                            contract.public_id):
        res = getattr(client, method)(path, headers=staff_headers, **kwargs)
        assert (res.status_code, res.json["error"]["code"]) == (status, code), (path, kwargs,
                                                                                res.json)
        assert res.json["error"]["message"]
    quote = client.get(f"/api/v1/contracts/{contract.public_id}/cancellation-quote",
                       headers=staff_headers).json
    assert quote["amount"] == 6000  # nothing above changed the contract


def test_staff_endpoints_need_a_staff_token(client, one_contract, store_key):
    order, (contract,) = one_contract
    for method, path in (("get", "/api/v1/contracts"),
                         ("get", f"/api/v1/contracts/{contract.public_id}"),
                         ("post", f"/api/v1/contracts/{contract.public_id}/cancel"),
                         ("post", f"/api/v1/orders/{order.public_id}/lines/1/returns")):
        res = getattr(client, method)(path, headers=store_key, json={})
        assert res.status_code == 401 and res.json["error"]["code"] == "unauthorized"
