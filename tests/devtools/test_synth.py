"""The synthetic store generator: exact counts, and every report reads what it writes."""

from __future__ import annotations

import json

from click.testing import CliRunner
from sqlmodel import func, select

from devtools.cli import main
from warranty.claims.models import Claim, NpsAnswer, Payout
from warranty.contracts.models import Contract
from warranty.experiment.models import VisitorEvent
from warranty.orders.models import Order, OrderLine, Refund


def test_synth_writes_a_store_the_reports_can_read(database_url, db, monkeypatch, client,
                                                   staff_headers):
    monkeypatch.setenv("WARRANTY_ENV", "test")
    monkeypatch.setenv("WARRANTY_DATABASE_URL", database_url)
    res = CliRunner().invoke(main, ["synth", "--orders", "3000", "--plans", "600",
                                    "--start", "2025-01-01", "--days", "365"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output

    def count(model, *where):
        return db.exec(select(func.count()).select_from(model).where(*where)).one()

    assert count(Order) == 3000 and count(Contract) == 600
    assert count(OrderLine, OrderLine.kind == "plan") == 600
    assert count(Refund) == count(Contract, Contract.status == "cancelled") > 0
    assert count(Claim) > 0 and 0 < count(Payout) <= count(Claim)
    assert count(NpsAnswer) > 0 and count(VisitorEvent) > 3000
    figures = json.loads(res.output[res.output.index("{"):])
    assert figures["rows_orders"] == 3000
    for name in ("finance", "conversion", "attach", "nps", "retention"):
        body = client.get(f"/api/v1/reports/{name}?from=2025-01-01&to=2025-12-31",
                          headers=staff_headers)
        assert body.status_code == 200, (name, body.json)
    conversion = client.get("/api/v1/reports/conversion?from=2025-01-01&to=2025-12-31",
                            headers=staff_headers).json
    arms = {row["arm"]: row for row in conversion["rows"]}
    assert arms["treatment"]["visitors"] > arms["holdout"]["visitors"] > 0
    assert conversion["tests"]["conversion_rate"]["p_value"] is not None
