"""Prometheus metrics at /metrics: requests by endpoint and status, the outbox backlogs, and
the staff attention queue (``warranty_attention_open{kind}``).

Request counts and latencies are kept per process. Under gunicorn each worker is its own
process, so ``PROMETHEUS_MULTIPROC_DIR`` must name an empty directory shared by them
(warranty/gunicorn_conf.py sets one up and cleans after dead workers); a scrape then sums
every worker. Backlogs are counted from the database at scrape time, so any process
answers them right. The endpoint needs a staff bearer token, or a caller address listed
in ``WARRANTY_METRICS_ALLOW``.
"""

from __future__ import annotations

import ipaddress
import os
import time

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from sqlmodel import Session

from warranty import outboxes
from warranty.attention.services import open_counts
from warranty.auth.credentials import bearer_role
from warranty.auth.roles import require_permission
from warranty.http.session import get_session
from warranty.outboxes import OUTBOXES

bp = Blueprint("metrics", __name__)

REQUESTS = Counter("warranty_http_requests_total", "HTTP requests answered",
                   ["endpoint", "method", "status"])
LATENCY = Histogram("warranty_http_request_duration_seconds", "Time to answer a request",
                    ["endpoint", "method"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


def _endpoint() -> str:
    """The matched route pattern (bounded label values), never the raw path."""
    rule = request.url_rule
    return rule.rule if rule is not None else "unmatched"


def _started() -> None:
    """Note when the request began."""
    g.metrics_started = time.perf_counter()


def _finished(response: Response) -> Response:
    """Count the request and its latency."""
    started = g.pop("metrics_started", None)
    endpoint = _endpoint()
    REQUESTS.labels(endpoint, request.method, str(response.status_code)).inc()
    if started is not None:
        LATENCY.labels(endpoint, request.method).observe(time.perf_counter() - started)
    return response


def install(app: Flask) -> None:
    """Instrument every request of ``app`` and serve /metrics."""
    app.before_request(_started)
    app.after_request(_finished)
    app.register_blueprint(bp)


class BacklogCollector:
    """Rows waiting in each outbox (warranty.outboxes), counted when scraped."""

    def __init__(self, session: Session):
        """Count with ``session``."""
        self.session = session

    def collect(self):
        """Yield the backlog and dead-letter gauges."""
        backlog = GaugeMetricFamily("warranty_backlog", "Rows waiting to be worked on",
                                    labels=["queue"])
        dead = GaugeMetricFamily("warranty_dead_letters", "Rows given up on (need a person)",
                                 labels=["queue"])
        retrying = GaugeMetricFamily("warranty_retrying",
                                     "Rows waiting for another try after a failed one",
                                     labels=["queue"])
        for name in OUTBOXES:  # the registry `warranty outbox` reads: the same counts
            counted = outboxes.counts(self.session, name)
            backlog.add_metric([name], counted["waiting"])
            dead.add_metric([name], counted["given_up"])
            retrying.add_metric([name], counted["retrying"])
        yield backlog
        yield dead
        yield retrying
        waiting = GaugeMetricFamily("warranty_attention_open",
                                    "Attention queue items not handled yet (need a person)",
                                    labels=["kind"])
        for kind, count in open_counts(self.session).items():
            waiting.add_metric([kind], count)
        yield waiting


def _allowed(remote: str | None, allow: str) -> bool:
    """Whether the caller's address is in the comma-separated allowlist of IPs and networks."""
    if not remote or not allow.strip():
        return False
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return False
    for item in allow.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            if address in ipaddress.ip_network(item, strict=False):
                return True
        except ValueError:
            continue  # a typo in the setting must not open or break the endpoint
    return False


def _process_registry() -> CollectorRegistry:
    """This process's metrics, or every worker's in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


@bp.get("/metrics")
def metrics():
    """Prometheus text format: request metrics and outbox backlogs."""
    settings = current_app.config["SETTINGS"]
    session = get_session()
    if not _allowed(request.remote_addr, settings.metrics_allow):
        _, role = bearer_role(session=session, header=request.headers.get("Authorization"),
                              master_token=settings.api_token)
        require_permission(role, "read")
    backlog = CollectorRegistry()
    backlog.register(BacklogCollector(session))
    body = generate_latest(_process_registry()) + generate_latest(backlog)
    return Response(body, mimetype=CONTENT_TYPE_LATEST)
