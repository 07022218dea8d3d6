"""The store's webhook endpoint down for hours: backoff grows, delivery happens once, or the
event is dead-lettered after the last attempt."""

from __future__ import annotations

from sqlmodel import select

from tests.notify.test_store_webhooks import queue_created
from warranty.core.dates import utcnow
from warranty.notify.models import OutboundWebhook
from warranty.notify.webhooks import run_webhooks


def _wait_out_backoff(db) -> float:
    """Time passes until the pending events are due; returns the longest wait skipped (s)."""
    db.expire_all()
    rows = db.exec(select(OutboundWebhook).where(OutboundWebhook.status == "pending")).all()
    now = utcnow()
    waited = max((r.next_attempt_at - now).total_seconds() for r in rows)
    for row in rows:
        row.next_attempt_at = now
        db.add(row)
    db.commit()
    return waited


def test_store_down_for_hours_gets_each_event_once_when_it_is_back(db, hook_settings, receiver):
    _, got, status = receiver
    queue_created(db, hook_settings)
    waits = []
    for _ in range(8):  # the store answers 500 to eight tries in a row
        assert run_webhooks(settings=hook_settings, limit=10) == 2
        assert run_webhooks(settings=hook_settings, limit=10) == 0  # not due yet
        waits.append(round(_wait_out_backoff(db)))
    base = hook_settings.retry_base_seconds
    assert waits == [base * 2 ** n for n in range(8)]  # 30 s, 1 min, ... 64 min
    assert sum(waits) / 3600 > 2  # more than two hours of outage
    status[0] = 200
    assert run_webhooks(settings=hook_settings, limit=10) == 2
    assert run_webhooks(settings=hook_settings, limit=10) == 0
    db.expire_all()
    assert db.exec(select(OutboundWebhook.status)).all() == ["delivered", "delivered"]
    accepted = [h["Warranty-Event-Id"] for h, _ in got[-2:]]
    assert len(got) == 18 and len(set(accepted)) == 2  # 8 failed tries each, then one each


def test_store_down_for_good_dead_letters_after_the_last_attempt(db, hook_settings, receiver):
    _, got, _ = receiver
    queue_created(db, hook_settings)
    waits = []
    for _ in range(hook_settings.webhook_max_attempts - 1):
        assert run_webhooks(settings=hook_settings, limit=10) == 2
        waits.append(round(_wait_out_backoff(db)))
    assert waits[-1] == hook_settings.retry_cap_seconds  # backoff stops growing at the cap
    assert all(a <= b for a, b in zip(waits, waits[1:], strict=False))
    assert run_webhooks(settings=hook_settings, limit=10) == 2  # the last attempt
    db.expire_all()
    rows = db.exec(select(OutboundWebhook)).all()
    last = hook_settings.webhook_max_attempts
    assert [(r.status, r.attempts) for r in rows] == [("dead", last), ("dead", last)]
    assert all(r.last_error == "store answered HTTP 500" for r in rows)
    for row in rows:
        row.next_attempt_at = utcnow()
        db.add(row)
    db.commit()
    assert run_webhooks(settings=hook_settings, limit=10) == 0  # dead stays dead
    assert len(got) == 2 * hook_settings.webhook_max_attempts
