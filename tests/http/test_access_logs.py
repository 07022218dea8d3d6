"""Tokens of mailed links never reach an access log: gunicorn's (with the shipped
configuration) and the demo's development server."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.faults.conftest import ROOT, free_port, gunicorn, wait_up

LINKS = ("/my/sign-in?token={t}&lang=en", "/my/plans?token={t}", "/my/nps?token={t}",
         "/plans/add?token={t}", "/api/v1/offers?sku=TV-1&offer_token={t}")


def _visit(base: str) -> list[str]:
    """Open every kind of token link once; the tokens used."""
    tokens = []
    for link in LINKS:
        token = f"tok{secrets.token_hex(12)}"
        tokens.append(token)
        requests.get(base + link.format(t=token), timeout=10, allow_redirects=False)
    return tokens


def _wait_for(path: Path, text: str, timeout: float = 10.0) -> str:
    """The file's content once it holds ``text``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = path.read_text() if path.exists() else ""
        if text in content:
            return content
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never reached {path}")


def test_gunicorn_access_log_has_no_tokens(settings, tmp_path):
    log = tmp_path / "access.log"
    with gunicorn(settings, WARRANTY_ACCESS_LOG=str(log)) as (base, _):
        tokens = _visit(base)
        requests.get(f"{base}/livez?done=1", timeout=10)
        written = _wait_for(log, "/livez?done=1")
    assert written.count("\n") >= len(LINKS) + 1
    assert "GET /my/sign-in?token=[redacted]&lang=en HTTP/1.1" in written
    assert "GET /plans/add?token=[redacted]" in written and "sku=TV-1" in written
    leaked = [token for token in tokens if token in written]
    assert leaked == []


def test_the_demo_servers_request_log_has_no_tokens(tmp_path):
    port, stripe_port, smtp_port = free_port(), free_port(), free_port()
    out = tmp_path / "demo.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARRANTY_")}
    env.update(DEMO_PORT=str(port), DEMO_STRIPE_PORT=str(stripe_port),
               DEMO_SMTP_PORT=str(smtp_port), WARRANTY_UPLOAD_DIR=str(tmp_path / "uploads"),
               WARRANTY_DATABASE_URL=f"sqlite:///{tmp_path / 'demo.db'}")
    with out.open("w") as handle:
        demo = subprocess.Popen([sys.executable, "-m", "devtools.demo"], cwd=ROOT, env=env,
                                stdout=handle, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_up(base, timeout=60)
        tokens = _visit(base)
        requests.get(f"{base}/livez?done=1", timeout=10)
        written = _wait_for(out, "/livez?done=1")
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(timeout=20)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait(timeout=5)
    assert "GET /my/sign-in?token=[redacted]&lang=en HTTP/1.1" in written
    leaked = [token for token in tokens if token in written]
    assert leaked == []


def test_the_readmes_nginx_sample_logs_paths_without_their_query():
    """The README's reverse proxy is the first access log a link's token reaches: its sample
    sets a log format of its own, without the query string (nginx's default format writes
    ``$request``, the whole request line, tokens included) and without the referrer."""
    import re

    readme = (ROOT / "README.md").read_text()
    (sample,) = [block for block in re.findall(r"```nginx\n(.*?)```", readme, re.S)
                 if "proxy_pass" in block]
    formats = dict(re.findall(r"log_format\s+(\w+)\s+((?:'[^']*'\s*)+);", sample))
    logs = re.findall(r"^\s*access_log\s+(\S+)(?:\s+(\w+))?\s*;", sample, re.M)
    assert logs, "the sample sets no access_log: nginx would log $request (the query too)"
    for path, name in logs:
        if path == "off":
            continue
        assert name in formats, f"access_log {path} uses nginx's default format"
        for leaky in ("$request ", "$request\"", "$request_uri", "$args", "$query_string",
                      "$arg_", "$http_referer"):
            assert leaky not in formats[name] + " ", (name, leaky)
        assert "$uri" in formats[name]
