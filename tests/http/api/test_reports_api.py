"""Reports through the API and the command line: formats, streaming, validation, access."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime

from click.testing import CliRunner
from openpyxl import load_workbook
from sqlmodel import select

from tests.report_history import payout, plan_sale
from warranty.auth.credentials import issue_token
from warranty.cli import main as cli
from warranty.contracts.models import Contract
from warranty.http.app import create_app

URL = "/api/v1/reports/{}?from={}&to={}"


def _history(db):
    """One ¥3,650 plan (¥10 a day) sold 2026-01-10 and one cancelled with a ¥1,000 refund."""
    plan_sale(db, price=3650, sold_on=date(2026, 1, 10), payment_intent_id="pi_a")
    plan_sale(db, price=3650, sold_on=date(2026, 1, 10), category="phones",
              payment_intent_id="pi_b", cancel=(date(2026, 2, 3), 1000))


def test_finance_json_csv_xlsx_agree(client, db, staff_headers):
    _history(db)
    url = URL.format("finance", "2026-01-01", "2026-02-28")
    body = client.get(url, headers=staff_headers).get_json()
    assert body["report"] == "finance" and body["currency"] == "jpy"
    # Earned: electronics 22 + 28 days × ¥10 = 500; phones 22 days × 10 = 220 in January,
    # then on 2026-02-03 it has earned 3,650 − 1,000 = 2,650 → 2,430 in February.
    assert body["total"]["earned_revenue"] == 500 + 2650
    assert body["total"]["gross_sales"] == 7300 and body["total"]["refunds"] == 1000
    # Deferred at Feb 28: 3,650 − 500 = 3,150 (phones has nothing left).
    assert body["total"]["deferred_revenue"] == 3150

    text = client.get(url + "&format=csv", headers=staff_headers).get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    total = next(r for r in rows if r["month"] == "all" and r["category"] == "all")
    assert (total["earned_revenue"], total["deferred_revenue"]) == ("3150", "3150")

    response = client.get(url + "&format=xlsx", headers=staff_headers)
    assert response.headers["Content-Disposition"].endswith('.xlsx"')
    sheet = load_workbook(io.BytesIO(response.get_data())).active
    values = list(sheet.values)
    header = list(values[0])
    last = dict(zip(header, values[-1], strict=True))
    assert (last["month"], last["category"], last["gross_sales"]) == ("all", "all", 7300)


def test_usd_money_is_in_major_units_in_csv(settings, db, staff_headers):
    plan_sale(db, price=4999, sold_on=date(2026, 3, 15), currency="usd")
    client = create_app(settings.model_copy(update={"currency": "usd"})).test_client()
    text = client.get(URL.format("movements", "2026-03-01", "2026-03-31") + "&format=csv",
                      headers=staff_headers).get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["type"], r["amount"]) for r in rows] == [("sale", "49.99")]


def test_movements_carry_stripe_ids(client, db, staff_headers):
    _history(db)
    contract = db.exec(select(Contract).order_by(Contract.id)).first()
    # Paid 2026-03-31 16:00 UTC = 2026-04-01 01:00 in Tokyo: an April movement.
    payout(db, contract, amount=2000, paid_at=datetime(2026, 3, 31, 16, tzinfo=UTC),
           reference="BT-77")
    body = client.get(URL.format("movements", "2026-01-01", "2026-12-31"),
                      headers=staff_headers).get_json()
    moves = [(r["date"], r["type"], r["amount"], r["stripe_payment_intent_id"])
             for r in body["rows"]]
    assert moves == [("2026-01-10", "sale", 3650, "pi_a"), ("2026-01-10", "sale", 3650, "pi_b"),
                     ("2026-02-03", "refund", -1000, "pi_b"),
                     ("2026-04-01", "payout", -2000, "pi_a")]
    assert body["rows"][-1]["payout_reference"] == "BT-77"
    refund = body["rows"][-2]
    assert refund["stripe_refund_id"].startswith("re_test_")


def test_journal_balances_and_matches_deferred(client, db, staff_headers):
    _history(db)
    body = client.get(URL.format("journal", "2026-01-01", "2026-02-28"),
                      headers=staff_headers).get_json()
    debits = sum(r["debit"] or 0 for r in body["rows"])
    credits = sum(r["credit"] or 0 for r in body["rows"])
    assert debits == credits
    deferred = sum((r["credit"] or 0) - (r["debit"] or 0) for r in body["rows"]
                   if r["account"] == "deferred_revenue")
    # 7,300 sold − 1,000 refunded − 3,150 earned = 3,150 still deferred.
    assert deferred == body["deferred_closing"] - body["deferred_opening"] == 3150


def test_contracts_export_has_earned_and_deferred(client, db, staff_headers):
    _history(db)
    body = client.get(URL.format("contracts", "2026-01-01", "2026-01-31"),
                      headers=staff_headers).get_json()
    figures = sorted((r["category"], r["earned_to_date"], r["deferred_at_end"])
                     for r in body["rows"])
    # By Jan 31 each has earned 22 days × ¥10 = 220.
    assert figures == [("electronics", 220, 3430), ("phones", 220, 3430)]


def test_bad_dates_and_unknown_reports_are_clear_errors(client, staff_headers):
    cases = [
        (URL.format("finance", "2026-02-01", "2026-01-01"), 422, "invalid_period", "after"),
        (URL.format("finance", "2026-13-01", "2026-12-31"), 422, "invalid_period", "ISO"),
        ("/api/v1/reports/finance?to=2026-01-01", 422, "invalid_request", "from"),
        (URL.format("finance", "0001-01-01", "2026-01-01"), 422, "invalid_period", "between"),
        (URL.format("finance", "2026-01-01", "2026-01-31") + "&format=pdf", 422,
         "invalid_request", "format"),
        (URL.format("nope", "2026-01-01", "2026-01-31"), 404, "unknown_report", "finance"),
    ]
    for url, status, code, words in cases:
        response = client.get(url, headers=staff_headers)
        assert response.status_code == status, url
        error = response.get_json()["error"]
        assert error["code"] == code and words in error["message"], error


def test_reports_need_a_finance_token(client, db):
    staff = issue_token(session=db, name="desk", role="staff")
    finance = issue_token(session=db, name="books", role="finance")
    db.commit()
    url = URL.format("finance", "2026-01-01", "2026-01-31")
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": f"Bearer {staff}"}).status_code == 403
    assert client.get(url, headers={"Authorization": f"Bearer {finance}"}).status_code == 200


def test_cli_writes_each_format(db, settings, tmp_path, monkeypatch):
    _history(db)
    monkeypatch.setenv("WARRANTY_ENV", "test")
    monkeypatch.setenv("WARRANTY_DATABASE_URL", settings.database_url)
    runner = CliRunner()
    out = runner.invoke(cli, ["report", "finance", "--from", "2026-01-01", "--to",
                              "2026-02-28", "--format", "json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["total"]["refunds"] == 1000
    target = tmp_path / "orders.xlsx"
    out = runner.invoke(cli, ["report", "orders", "--from", "2026-01-01", "--to", "2026-01-31",
                              "--format", "xlsx", "--output", str(target)])
    assert out.exit_code == 0, out.output
    assert load_workbook(target).active.max_row == 3  # header + two orders
    out = runner.invoke(cli, ["report", "finance", "--from", "2026-03-01", "--to", "2026-01-01"])
    assert out.exit_code != 0 and "after" in out.output
