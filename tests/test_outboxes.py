"""One outbox registry: the metrics' gauges and ``warranty outbox`` count the same rows."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from click.testing import CliRunner
from sqlmodel import select

from tests.report_history import plan_sale
from warranty.cli import main as cli
from warranty.http.metrics import BacklogCollector
from warranty.notify.models import MailMessage, OutboundWebhook
from warranty.orders.models import Refund
from warranty.outboxes import OUTBOXES
from warranty.payments.models import StripeEvent


def _gauges(db) -> dict[tuple[str, str], float]:
    """{(gauge, queue): value} of the outbox gauges, as /metrics would show them."""
    found = {}
    for family in BacklogCollector(db).collect():
        for sample in family.samples:
            if "queue" in sample.labels:
                found[(family.name, sample.labels["queue"])] = sample.value
    return found


def test_dead_letters_are_what_warranty_outbox_counts_as_given_up(db, database_url,
                                                                    monkeypatch):
    # Each outbox: one row given up on, one waiting after a failed try, one waiting.
    for status, error in (("dead", "550 no such mailbox"), ("pending", "timeout"),
                          ("pending", None)):
        db.add(MailMessage(to="a@example.com", subject="s", body="b", kind="test",
                           status=status, last_error=error))
        db.add(OutboundWebhook(type="contract.created", payload={}, status=status,
                               last_error=error))
    for status in ("failed", "pending", "pending"):
        plan_sale(db, price=3000, sold_on=date(2026, 1, 10),
                  cancel=(date(2026, 2, 1), 1000), refund_status=status)
    for n, (outcome, error, processed) in enumerate((("failed", "no such charge", True),
                                                     (None, "Stripe is down", False),
                                                     (None, None, False))):
        db.add(StripeEvent(id=f"evt_{n}", type="charge.refunded", payload={}, outcome=outcome,
                           last_error=error,
                           processed_at=datetime(2026, 2, 1, tzinfo=UTC) if processed
                           else None))
    retrying = db.exec(select(Refund).where(Refund.status == "pending")).first()
    retrying.last_error = "Stripe is down"
    db.commit()

    monkeypatch.setenv("WARRANTY_ENV", "test")
    monkeypatch.setenv("WARRANTY_DATABASE_URL", database_url)
    listed = CliRunner().invoke(cli, ["outbox"], catch_exceptions=False)
    assert listed.exit_code == 0, listed.output
    report = json.loads(listed.output)
    gauges = _gauges(db)
    assert set(report) == set(OUTBOXES)
    for name, box in report.items():
        assert (box["given_up"], box["retrying"], box["waiting"]) == (1, 1, 2), name
        assert gauges[("warranty_dead_letters", name)] == box["given_up"], name
        assert gauges[("warranty_retrying", name)] == box["retrying"], name
        assert gauges[("warranty_backlog", name)] == box["waiting"], name
