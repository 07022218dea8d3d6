"""A product's serial number registered with its contract: by the store through the API, by
the customer through their plans page; normalised, audited, copied to claims and shown on the
pages that show a claim."""

from datetime import date

import pytest
from sqlmodel import select

from tests.claims.helpers import file
from tests.factories import add_staff, paid_order
from tests.http.web.pages import PURCHASE, csrf, sign_in_customer, sign_in_staff
from tests.races import postgres_only, served, together
from warranty.claims.models import Claim
from warranty.contracts.models import Contract, ContractEvent

SCRIPT = "<script>alert(1)</script>"


def _put(client, headers, contract, value, **extra):
    """PUT the serial number of ``contract`` through the API."""
    return client.put(f"/api/v1/contracts/{contract.public_id}/serial-number",
                      json={"serial_number": value, **extra}, headers=headers)


def _audit(db, contract) -> list[ContractEvent]:
    """The contract's serial number audit rows, oldest first."""
    db.rollback()
    return list(db.exec(select(ContractEvent).where(
        ContractEvent.contract_id == contract.id, ContractEvent.action == "serial_number")
        .order_by(ContractEvent.id)).all())


def test_the_store_registers_corrects_and_removes_a_serial_through_the_api(
        client, db, staff_headers):
    _, (contract,) = paid_order(db)
    res = _put(client, staff_headers, contract, "  ＳＮ－４Ｆ２Ｋ\u200b ", reason="from the WMS")
    assert res.status_code == 200, res.json
    assert res.json["contract"]["serial_number"] == "SN-4F2K"
    assert res.json["history"][-1]["action"] == "serial_number"
    assert res.json["history"][-1]["data"] == {"from": None, "to": "SN-4F2K"}
    assert res.json["history"][-1]["reason"] == "from the WMS"
    db.refresh(contract)
    assert (contract.serial_number, contract.serial_key) == ("SN-4F2K", "sn4f2k")
    # The same value again changes nothing and writes no audit row.
    assert _put(client, staff_headers, contract, "SN-4F2K").status_code == 200
    assert _put(client, staff_headers, contract, "SN-4F2L").status_code == 200
    assert _put(client, staff_headers, contract, None).status_code == 200
    rows = _audit(db, contract)
    assert [(r.data["from"], r.data["to"], r.actor) for r in rows] == [
        (None, "SN-4F2K", "admin-token"), ("SN-4F2K", "SN-4F2L", "admin-token"),
        ("SN-4F2L", None, "admin-token")]
    got = client.get(f"/api/v1/contracts/{contract.public_id}", headers=staff_headers)
    assert got.json["contract"]["serial_number"] is None


@pytest.mark.parametrize("value", ["SN\n1", "SN\t1", "\u2028", "", "   ", "X" * 65])
def test_bad_serials_are_a_422_and_write_nothing(client, db, staff_headers, value):
    _, (contract,) = paid_order(db)
    res = _put(client, staff_headers, contract, value)
    assert res.status_code == 422, res.json
    assert res.json["error"]["code"] == "invalid_serial_number"
    assert res.json["error"]["message"]
    db.refresh(contract)
    assert contract.serial_number is None and _audit(db, contract) == []


def test_the_api_refuses_other_bodies_and_unknown_contracts(client, db, staff_headers,
                                                            store_key):
    _, (contract,) = paid_order(db)
    path = f"/api/v1/contracts/{contract.public_id}/serial-number"
    assert client.put(path, json={}, headers=staff_headers).status_code == 422
    assert client.put(path, json={"serial_number": 12}, headers=staff_headers).status_code == 422
    assert client.put(path, json={"serial_number": "X" * 201},
                      headers=staff_headers).status_code == 422
    assert client.put(path, json={"serial_number": "SN"}, headers=store_key).status_code == 401
    missing = client.put("/api/v1/contracts/ct_nope/serial-number",
                         json={"serial_number": "SN"}, headers=staff_headers)
    assert missing.status_code == 404 and missing.json["error"]["code"] == "unknown_contract"


def _serial_form(client, contract, value, lang="en"):
    """Post the serial number form of ``contract`` from the plans page."""
    return client.post(f"/my/plans/{contract.public_id}/serial-number",
                       data={"csrf_token": csrf(client), "serial_number": value},
                       headers={"Accept-Language": lang})


def test_the_customer_registers_their_serial_on_the_plans_page(client, db, settings):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE)
    sign_in_customer(client, settings)
    page = client.get("/my/plans", headers={"Accept-Language": "ja"}).get_data(as_text=True)
    assert "製造番号(シリアル番号)" in page
    assert f'id="serial_number-{contract.public_id}"' in page
    res = _serial_form(client, contract, " ｓｎ－７７ ")
    assert res.status_code == 303
    assert res.headers["Location"].endswith(f"#plan-{contract.public_id}")
    shown = client.get(res.headers["Location"]).get_data(as_text=True)
    # The page stays in the language the customer first saw it in (Japanese here).
    assert 'value="sn-77"' in shown and "製造番号を登録しました。" in shown
    (row,) = _audit(db, contract)
    assert (row.actor, row.data) == ("customer:buyer@example.com", {"from": None, "to": "sn-77"})


@pytest.mark.parametrize(("lang", "message"), [
    ("en", "A serial number has 1 to 64 characters"),
    ("ja", "製造番号は1〜64文字で"),
])
def test_a_refused_serial_shows_the_page_again_with_the_message_by_the_field(
        client, db, settings, lang, message):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE)
    sign_in_customer(client, settings)
    res = _serial_form(client, contract, "SN\r\nBcc: x@evil.example", lang=lang)
    assert res.status_code == 422
    html = res.get_data(as_text=True)
    field = f"serial_number-{contract.public_id}"
    assert f'id="{field}-error"' in html and message in html
    assert f'aria-describedby="{field}-hint {field}-error"' in html
    assert 'aria-invalid="true"' in html
    db.refresh(contract)
    assert contract.serial_number is None


def test_a_serial_is_escaped_on_every_page(client, db, settings, staff_headers):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE)
    assert _put(client, staff_headers, contract, SCRIPT).status_code == 200
    claim = file(db, settings, contract, incident=date(2025, 3, 1), today=date(2026, 1, 1))
    sign_in_customer(client, settings)
    for path in ("/my/plans", f"/my/claims/{claim.public_id}"):
        html = client.get(path).get_data(as_text=True)
        assert SCRIPT not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_only_the_owner_with_the_mailed_link_changes_a_serial_and_only_before_a_claim(
        client, db, settings, staff_headers):
    _, (mine,) = paid_order(db, purchase_date=PURCHASE)
    _, (theirs,) = paid_order(db, purchase_date=PURCHASE, email="other@example.com",
                              order_ref="B-1")
    sign_in_customer(client, settings)
    other = _serial_form(client, theirs, "SN-1")
    assert other.status_code == 404
    other.close()
    db.refresh(theirs)
    assert theirs.serial_number is None
    assert _serial_form(client, mine, "SN-1").status_code == 303
    db.rollback()  # a new snapshot: the app wrote the serial
    file(db, settings, mine, incident=date(2025, 3, 1), today=date(2026, 1, 1))
    page = client.get("/my/plans").get_data(as_text=True)
    assert f'id="serial_number-{mine.public_id}"' not in page  # no form once a claim exists
    assert "SN-1" in page
    locked = _serial_form(client, mine, "SN-2")
    assert locked.status_code == 409
    assert "can no longer be changed here" in locked.get_data(as_text=True)
    db.refresh(mine)
    assert mine.serial_number == "SN-1"
    # The store still can, and the claim keeps the serial it was filed with.
    assert _put(client, staff_headers, mine, "SN-2").status_code == 200
    claim = db.exec(select(Claim).where(Claim.contract_id == mine.id)).one()
    assert claim.serial_number == "SN-1"


def test_an_order_reference_session_sees_the_serial_but_no_form(client, db, staff_headers):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE, order_ref="A-1001")
    assert _put(client, staff_headers, contract, "SN-9").status_code == 200
    token = csrf(client)
    assert client.post("/my/plans", data={"csrf_token": token, "email": "buyer@example.com",
                                          "order_ref": "A-1001"}).status_code == 302
    page = client.get("/my/plans").get_data(as_text=True)
    assert "SN-9" in page and "serial-number" not in page
    res = client.post(f"/my/plans/{contract.public_id}/serial-number",
                      data={"csrf_token": csrf(client), "serial_number": "SN-10"})
    assert res.status_code == 403  # needs the mailed link


def test_claims_show_the_serial_they_were_filed_with(client, db, settings, staff_headers):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE)
    assert _put(client, staff_headers, contract, "SN-OLD").status_code == 200
    db.refresh(contract)
    claim = file(db, settings, contract, incident=date(2025, 3, 1), today=date(2026, 1, 1))
    assert (claim.serial_number, claim.serial_key) == ("SN-OLD", "snold")
    api = client.get(f"/api/v1/claims/{claim.public_id}", headers=staff_headers)
    assert api.json["serial_number"] == "SN-OLD"
    assert _put(client, staff_headers, contract, "SN-NEW").status_code == 200
    add_staff(db)
    sign_in_staff(client)
    staff = client.get(f"/staff/claims/{claim.public_id}").get_data(as_text=True)
    assert "Serial number" in staff and "SN-NEW" in staff and "When filed: SN-OLD" in staff
    client.post("/staff/logout", data={"csrf_token": csrf(client, "/staff/claims")})
    sign_in_customer(client, settings)
    for lang, label, filed in (("en", "Serial number", "When filed: SN-OLD"),
                               ("ja", "製造番号(シリアル番号)", "申請時: SN-OLD")):
        page = client.get(f"/my/claims/{claim.public_id}",
                          headers={"Accept-Language": lang}).get_data(as_text=True)
        assert label in page and "SN-NEW" in page and filed in page


def test_concurrent_store_changes_keep_one_unbroken_audit_chain(mail_settings, db,
                                                                database_url):
    import requests

    postgres_only(database_url)
    _, (contract,) = paid_order(db)
    headers = {"Authorization": f"Bearer {mail_settings.api_token}"}
    values = [f"SN-{n}" for n in range(8)]
    with served(mail_settings) as url:
        def put(value):
            def call():
                with requests.Session() as http:
                    return http.put(f"{url}/api/v1/contracts/{contract.public_id}/serial-number",
                                    json={"serial_number": value}, headers=headers,
                                    timeout=60).status_code
            return call

        assert together(*[put(v) for v in values]) == [200] * len(values)
    rows = _audit(db, contract)
    # Each change read the value the previous one committed (the row lock): a chain.
    assert rows[0].data["from"] is None
    assert [r.data["from"] for r in rows[1:]] == [r.data["to"] for r in rows[:-1]]
    assert sorted(r.data["to"] for r in rows) == sorted(values)
    db.refresh(contract)
    assert contract.serial_number == rows[-1].data["to"]


def test_a_customer_change_racing_a_claim_never_lands_after_the_claim(
        mail_settings, db, database_url):
    """The customer may change the serial only while no claim exists; a claim filed at the
    same moment either sees the new serial or makes the change a 409, never both."""
    import requests

    from tests.races import CSRF
    from warranty.auth import links as magic_links

    postgres_only(database_url)
    _, (contract,) = paid_order(db, purchase_date=PURCHASE)
    headers = {"Authorization": f"Bearer {mail_settings.api_token}"}
    with served(mail_settings) as url:
        browser = requests.Session()
        link = magic_links.plans_link(mail_settings, "buyer@example.com")
        path = link.removeprefix(mail_settings.base_url)
        page = browser.get(f"{url}{path}", timeout=30).text
        token = CSRF.search(page).group(1)
        signed = browser.post(f"{url}/my/sign-in", timeout=30, allow_redirects=False,
                              data={"csrf_token": token,
                                    "token": link.split("token=")[1]})
        assert signed.status_code == 303, signed.text
        form = CSRF.search(browser.get(f"{url}/my/plans", timeout=30).text).group(1)

        def change():
            return browser.post(f"{url}/my/plans/{contract.public_id}/serial-number",
                                data={"csrf_token": form, "serial_number": "SN-RACE"},
                                allow_redirects=False, timeout=60).status_code

        def claim():
            with requests.Session() as http:
                return http.post(f"{url}/api/v1/claims", headers=headers, timeout=60, json={
                    "contract_id": contract.public_id, "incident_date": "2025-03-01",
                    "failure_type": "breakdown", "description": "dead"}).status_code

        changed, filed = together(change, claim)
    assert filed == 201 and changed in (303, 409)
    db.rollback()
    row = db.exec(select(Claim).where(Claim.contract_id == contract.id)).one()
    current = db.exec(select(Contract).where(Contract.id == contract.id)
                      .execution_options(populate_existing=True)).one()
    if changed == 303:
        assert row.serial_number == current.serial_number == "SN-RACE"
    else:
        assert row.serial_number is None and current.serial_number is None
