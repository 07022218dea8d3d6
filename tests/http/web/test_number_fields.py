"""Numbers typed into pages and queries: ASCII or full-width digits are numbers, any other
digits (Arabic-Indic, superscripts, ...) are a clear 4xx, never a 500."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlmodel import select

from tests.factories import add_staff, paid_order
from tests.http.web.pages import PURCHASE, csrf, multipart, sign_in_customer, sign_in_staff
from tests.http.web.test_staff_pages import _claim, _post
from warranty.claims import filing
from warranty.claims.models import Claim, NpsAnswer
from warranty.notify.models import MailMessage

OTHER_DIGITS = ["١٢٣", "²", "۳", "߃", "𝟚", "Ⅻ", "½"]


@pytest.mark.parametrize("page", OTHER_DIGITS + ["0", "10000", "-1", "abc"])
def test_the_claim_queue_refuses_a_page_that_is_not_a_number(client, db, page):
    add_staff(db)
    sign_in_staff(client)
    res = client.get("/staff/claims", query_string={"page": page},
                     headers={"Accept": "text/html"})
    assert res.status_code == 400 and b"invalid_page" in res.data


def test_the_claim_queue_reads_full_width_page_numbers(client, db):
    add_staff(db)
    sign_in_staff(client)
    assert client.get("/staff/claims?page=%EF%BC%92").status_code == 200  # "２"


@pytest.mark.parametrize("page", OTHER_DIGITS + ["0", "10000", "-1", "abc"])
def test_the_attention_queue_refuses_a_page_that_is_not_a_number(client, db, page):
    add_staff(db)
    sign_in_staff(client)
    res = client.get("/staff/attention", query_string={"page": page},
                     headers={"Accept": "text/html"})
    assert res.status_code == 400 and b"invalid_page" in res.data
    assert client.get("/staff/attention?page=%EF%BC%92").status_code == 200  # "２"


@pytest.mark.parametrize("score", OTHER_DIGITS)
def test_the_nps_score_refuses_other_digits(client, db, settings, score):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE)
    filing.file_claim(session=db, settings=settings, contract=contract,
                      customer_email="buyer@example.com", incident_date=date(2024, 6, 1),
                      failure_type="breakdown", description="x", estimated_amount=None,
                      files=[], actor="customer:x", today=date(2028, 1, 1), lang="en")
    db.commit()
    mail = db.exec(select(MailMessage).where(MailMessage.kind == "claim_nps")).one()
    db.commit()  # end the read: the page's answer is then seen
    path = re.search(r"(/my/nps\?token=\S+)", mail.body).group(1)
    token = csrf(client, path)
    nps_token = path.split("token=")[1].split("&")[0]
    bad = client.post("/my/nps", data={"csrf_token": token, "token": nps_token,
                                       "score": score})
    assert bad.status_code == 422 and 'id="score-error"' in bad.get_data(as_text=True)
    ok = client.post("/my/nps", data={"csrf_token": token, "token": nps_token, "score": "９"})
    assert "Thank you" in ok.get_data(as_text=True)
    assert db.exec(select(NpsAnswer.score)).one() == 9


@pytest.mark.parametrize("amount", OTHER_DIGITS)
def test_amounts_refuse_other_digits_on_claim_and_review_forms(client, db, settings, amount):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE, order_ref="A-2")
    sign_in_customer(client, settings)
    path = f"/my/plans/{contract.public_id}/claims/new"
    form = {"csrf_token": csrf(client, path), "incident_date": "2025-03-01",
            "failure_type": "breakdown", "description": "壊れました。", "estimated_amount": amount}
    res = client.post(path, **multipart(form))
    assert res.status_code == 422 and 'id="estimated_amount-error"' in res.get_data(
        as_text=True)
    assert db.exec(select(Claim)).all() == []
    db.commit()
    add_staff(db)
    claim = _claim(db, settings)
    sign_in_staff(client)
    review = _post(client, claim, "approve", decision="repair", amount=amount)
    assert review.status_code == 422 and 'id="approve-error"' in review.get_data(as_text=True)


def test_full_width_amounts_are_read_as_japanese_input_methods_type_them(client, db, settings):
    _, (contract,) = paid_order(db, purchase_date=PURCHASE)
    sign_in_customer(client, settings)
    path = f"/my/plans/{contract.public_id}/claims/new"
    form = {"csrf_token": csrf(client, path), "incident_date": "2025-03-01",
            "failure_type": "breakdown", "description": "壊れました。",
            "estimated_amount": "￥１２，０００"}
    res = client.post(path, **multipart(form))
    assert res.status_code in (302, 303), res.get_data(as_text=True)
    assert db.exec(select(Claim.estimated_amount)).one() == 12000


@pytest.mark.parametrize("value", ["١٢٣", "²", "１"])
def test_api_query_numbers_are_422(client, staff_headers, value):
    res = client.get("/api/v1/contracts", query_string={"page": value}, headers=staff_headers)
    assert res.status_code == 422 and res.json["error"]["code"] == "invalid_request"
