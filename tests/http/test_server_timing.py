"""Server-Timing on the Stripe webhook: where a delivery's time went, only when asked for."""

from __future__ import annotations

import requests

from tests.conftest import serve
from tests.payments.test_stripe_webhooks import post_event
from warranty.http.app import create_app


def _spans(response) -> dict[str, float]:
    spans = {}
    for part in response.headers["Server-Timing"].split(","):
        name, _, duration = part.strip().partition(";dur=")
        spans[name] = float(duration)
    return spans


def test_off_by_default(paid_without_webhooks):
    base_url, _, completed, _ = paid_without_webhooks
    res = post_event(base_url, completed)
    assert res.status_code == 200 and "Server-Timing" not in res.headers


def test_a_delivery_reports_its_spans_and_a_repeat_only_verify_and_record(
        paid_without_webhooks, stripe_settings):
    _, _, completed, _ = paid_without_webhooks
    timed = stripe_settings.model_copy(update={"server_timing": True})
    with serve(create_app(timed)) as url:
        first = post_event(url, completed)
        again = post_event(url, completed)
        refused = requests.post(f"{url}/stripe/webhook", json=completed, timeout=10)
    assert first.json()["outcome"] == "paid"
    spans = _spans(first)
    assert {"verify", "record", "stripe_fetch", "transaction", "contracts", "outbox",
            "customer_facts", "commit", "total"} <= set(spans)
    assert sum(v for k, v in spans.items() if k != "total") <= spans["total"]
    # Stripe's redelivery of a processed event: acknowledged without asking Stripe again.
    assert again.json()["outcome"] == "duplicate"
    assert set(_spans(again)) == {"verify", "record", "total"}
    # An error answer carries it too (the unsigned delivery is refused in verify).
    assert refused.status_code == 400 and "verify" in _spans(refused)
