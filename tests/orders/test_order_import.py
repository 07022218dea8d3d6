"""Orders paid outside the service: API batch and CSV import."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from click.testing import CliRunner

from warranty.cli import main as cli
from warranty.contracts.models import Contract
from warranty.orders.models import Order


def _orders(db):
    """(ref, channel, status, purchase date, total) of every order."""
    rows = db.execute(sa.select(Order.store_order_ref, Order.channel, Order.status,
                                Order.purchase_date, Order.total_amount)
                      .order_by(Order.store_order_ref)).all()
    return [tuple(r) for r in rows]


def test_api_imports_once_and_refuses_bad_batches(client, db, staff_headers):
    batch = {"orders": [
        {"order_ref": "EXT-1", "email": "Ann@Example.com", "purchase_date": "2025-11-03",
         "total_amount": 12800},
        {"order_ref": "EXT-2", "email": "bob@example.com", "purchase_date": "2026-01-15",
         "total_amount": 5400, "visitor_id": "v-9"}]}
    first = client.post("/api/v1/orders/import", json=batch, headers=staff_headers)
    assert first.status_code == 200 and first.get_json() == {"created": 2, "already_imported": 0}
    again = client.post("/api/v1/orders/import", json=batch, headers=staff_headers)
    assert again.get_json() == {"created": 0, "already_imported": 2}
    assert _orders(db) == [("EXT-1", "external", "paid", date(2025, 11, 3), 12800),
                           ("EXT-2", "external", "paid", date(2026, 1, 15), 5400)]
    assert db.execute(sa.select(Order.customer_email).where(
        Order.store_order_ref == "EXT-1")).scalar() == "ann@example.com"
    assert db.execute(sa.select(sa.func.count()).select_from(Contract)).scalar() == 0

    bad = [
        {"orders": [{"order_ref": "X", "email": "x@example.com", "purchase_date": "2026-02-30",
                     "total_amount": 1}]},
        {"orders": [{"order_ref": "X", "email": "nope", "purchase_date": "2026-02-01",
                     "total_amount": 1}]},
        {"orders": [{"order_ref": "X", "email": "x@example.com", "purchase_date": "2026-02-01",
                     "total_amount": -5}]},
        {"orders": [{"order_ref": "D", "email": "x@example.com", "purchase_date": "2026-02-01",
                     "total_amount": 1}] * 2},
        {"orders": []},
    ]
    for body in bad:
        response = client.post("/api/v1/orders/import", json=body, headers=staff_headers)
        assert response.status_code == 422, body
    assert len(_orders(db)) == 2


def test_import_needs_staff(client):
    response = client.post("/api/v1/orders/import", json={"orders": []})
    assert response.status_code == 401


def test_cli_imports_a_csv_and_names_bad_lines(db, settings, tmp_path, monkeypatch):
    monkeypatch.setenv("WARRANTY_ENV", "test")
    monkeypatch.setenv("WARRANTY_DATABASE_URL", settings.database_url)
    good = tmp_path / "orders.csv"
    good.write_text("order_ref,email,purchase_date,total_amount,visitor_id\n"
                    "S-1,c@example.com,2026-03-01,9900,\nS-2,c@example.com,2026-04-01,4500,v1\n")
    result = CliRunner().invoke(cli, ["import-orders", str(good)])
    assert result.exit_code == 0, result.output
    assert '"created": 2' in result.output
    assert [r[0] for r in _orders(db)] == ["S-1", "S-2"]
    broken = tmp_path / "broken.csv"
    broken.write_text("order_ref,email,purchase_date,total_amount\nS-3,c@example.com,"
                      "yesterday,10\n")
    result = CliRunner().invoke(cli, ["import-orders", str(broken)])
    assert result.exit_code != 0 and "CSV line 2: purchase_date" in result.output
