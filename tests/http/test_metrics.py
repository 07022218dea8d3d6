"""/metrics: request counts and latencies by endpoint and status, backlogs, access control."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests
import stripe
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import paid_order
from tests.faults.conftest import gunicorn
from warranty.contracts import notices as notifications
from warranty.http.app import create_app
from warranty.notify.mail import run_mail
from warranty.notify.models import OutboundWebhook
from warranty.payments import events as stripe_events


def samples(text: str) -> dict[tuple, float]:
    """Every sample as {(name, sorted labels): value}."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def requests_count(found: dict, endpoint: str, status: str, method: str = "GET") -> float:
    """The request counter for one endpoint and status."""
    key = ("warranty_http_requests_total",
           (("endpoint", endpoint), ("method", method), ("status", status)))
    return found.get(key, 0.0)


def test_metrics_count_requests_and_backlogs(client, db, settings, staff_headers):
    before = samples(client.get("/metrics", headers=staff_headers).text)
    for _ in range(3):
        assert client.get("/livez").status_code == 200
    assert client.get("/api/v1/contracts/nope", headers=staff_headers).status_code == 404
    assert client.get("/no/such/page").status_code == 404
    order, created = paid_order(db)
    notifications.notify_contracts_created(session=db, settings=settings, order=order,
                                           contracts=created)
    dead = OutboundWebhook(event_id="evt_dead", type="contract.created", payload={},
                           status="dead", attempts=12)
    db.add(dead)
    stripe_events.record(session=db, event=stripe.Event.construct_from(
        {"id": "evt_waiting", "type": "payment_intent.succeeded", "data": {"object": {}}}, "k"))
    db.commit()
    res = client.get("/metrics", headers=staff_headers)
    assert res.status_code == 200 and res.mimetype == "text/plain"
    after = samples(res.text)
    assert requests_count(after, "/livez", "200") - requests_count(before, "/livez", "200") == 3
    assert requests_count(after, "unmatched", "404") >= 1
    assert requests_count(after, "/api/v1/contracts/<contract_id>", "404") >= 1
    latency = ("warranty_http_request_duration_seconds_count",
               (("endpoint", "/livez"), ("method", "GET")))
    assert after[latency] - before.get(latency, 0) == 3
    backlog = {labels[0][1]: value for (name, labels), value in after.items()
               if name == "warranty_backlog"}
    assert backlog == {"mail": 1, "store_webhooks": len(created), "refunds": 0,
                       "stripe_events": 1}
    assert after[("warranty_dead_letters", (("queue", "store_webhooks"),))] == 1


def test_metrics_need_a_staff_token_or_an_allowed_address(settings, staff_headers):
    closed = create_app(settings).test_client()
    res = closed.get("/metrics")
    assert res.status_code == 401 and res.json["error"]["code"] == "unauthorized"
    bad = closed.get("/metrics", headers={"Authorization": "Bearer wrong"})
    assert bad.status_code == 401
    assert closed.get("/metrics", headers=staff_headers).status_code == 200
    elsewhere = create_app(settings.model_copy(update={"metrics_allow": "10.0.0.0/8, bogus"}))
    assert elsewhere.test_client().get("/metrics").status_code == 401
    local = create_app(settings.model_copy(update={"metrics_allow": "10.0.0.0/8,127.0.0.1"}))
    assert local.test_client().get("/metrics").status_code == 200


def test_gunicorn_workers_share_one_view_of_the_metrics(settings, staff_headers, tmp_path):
    folder = tmp_path / "metrics"
    with gunicorn(settings, workers=2, PROMETHEUS_MULTIPROC_DIR=str(folder)) as (base, _):
        http = requests.Session()
        before = samples(http.get(f"{base}/metrics", headers=staff_headers, timeout=10).text)
        sent = 0
        # Concurrent callers until both workers have answered some (each keeps its own file).
        with ThreadPoolExecutor(max_workers=8) as pool:
            while len(list(folder.glob("counter_*.db"))) < 2 and sent < 2000:
                codes = list(pool.map(lambda _: requests.get(f"{base}/livez", timeout=10)
                                      .status_code, range(40)))
                assert codes == [200] * 40
                sent += 40
        assert len(list(folder.glob("counter_*.db"))) == 2
        found = samples(http.get(f"{base}/metrics", headers=staff_headers, timeout=10).text)
    grew = requests_count(found, "/livez", "200") - requests_count(before, "/livez", "200")
    assert grew == sent  # every worker's requests, whichever worker answered the scrape


def test_dead_and_retrying_rows_of_every_outbox_are_counted(client, db, mail_settings,
                                                            smtp_sink, staff_headers):
    smtp_sink.refuse["gone@example.com"] = "550 5.1.1 no such mailbox"
    smtp_sink.refuse["busy@example.com"] = "451 4.3.0 try again later"
    for to in ("gone@example.com", "busy@example.com", "ok@example.com"):
        notifications.queue_mail(session=db, to=to, subject="s", body="b", kind="test")
    db.commit()
    assert run_mail(settings=mail_settings, limit=10) == 3
    stripe_events.record(session=db, event=stripe.Event.construct_from(
        {"id": "evt_failing", "type": "payment_intent.succeeded", "data": {"object": {}}}, "k"))
    db.commit()
    stripe_events.record_failure(session=db, settings=mail_settings, event_id="evt_failing",
                                 error="Stripe unavailable")
    db.commit()
    found = samples(client.get("/metrics", headers=staff_headers).text)
    dead = {labels[0][1]: v for (name, labels), v in found.items()
            if name == "warranty_dead_letters"}
    retrying = {labels[0][1]: v for (name, labels), v in found.items()
                if name == "warranty_retrying"}
    assert dead == {"mail": 1, "store_webhooks": 0, "refunds": 0, "stripe_events": 0}
    assert retrying == {"mail": 1, "store_webhooks": 0, "refunds": 0, "stripe_events": 1}
