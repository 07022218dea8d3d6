"""Settings refuse placeholder secrets outside demo and test."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from warranty.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
# Values as `secrets.token_urlsafe` makes them (what the README tells a store to run).
REAL = {"secret_key": "Qm3xV9cZr2Lw8TnYp4Kd1HsF6bJg0AeU",
        "api_token": "t7Rk2PzW9qLx4NcV1mBs8YdH3fGj6EaT",
        "public_key": "pk_live_51Hx7a2Kc9Lm4Qr8Tz3Wv6Yb"}


def test_production_requires_real_secrets(monkeypatch):
    monkeypatch.delenv("WARRANTY_ENV", raising=False)
    with pytest.raises(ValidationError, match="WARRANTY_SECRET_KEY"):
        Settings(secret_key="changeme", api_token="x" * 32)
    with pytest.raises(ValidationError, match="WARRANTY_API_TOKEN"):
        Settings(secret_key=REAL["secret_key"], api_token="secret")
    # Characters repeated are no secret (they were accepted before): real random ones are.
    with pytest.raises(ValidationError, match="WARRANTY_SECRET_KEY"):
        Settings(secret_key="s" * 32, api_token=REAL["api_token"], public_key=REAL["public_key"])
    ok = Settings(**REAL, currency="USD")
    assert ok.currency == "usd" and ok.timezone == "Asia/Tokyo"


def test_settings_read_the_prefixed_environment(monkeypatch):
    monkeypatch.setenv("WARRANTY_ENV", "demo")
    monkeypatch.setenv("WARRANTY_CURRENCY", "KWD")
    monkeypatch.setenv("WARRANTY_HOLDOUT_SHARE", "0.2")
    settings = Settings()
    assert settings.currency == "kwd" and settings.holdout_share == 0.2


def test_store_webhook_url_needs_a_real_secret(monkeypatch):
    monkeypatch.setenv("WARRANTY_ENV", "demo")
    with pytest.raises(ValidationError, match="WARRANTY_STORE_WEBHOOK_SECRET"):
        Settings(store_webhook_url="https://shop.example/hooks", store_webhook_secret="short")
    ok = Settings(store_webhook_url="https://shop.example/hooks", store_webhook_secret="s" * 16)
    assert ok.cancellation_fee == 0 and ok.free_look_days == 30


def test_claim_filing_window_after_the_term(monkeypatch):
    monkeypatch.setenv("WARRANTY_ENV", "demo")
    monkeypatch.delenv("WARRANTY_CLAIM_FILING_DAYS_AFTER_TERM", raising=False)
    assert Settings().claim_filing_days_after_term == 90
    monkeypatch.setenv("WARRANTY_CLAIM_FILING_DAYS_AFTER_TERM", "30")
    assert Settings().claim_filing_days_after_term == 30
    monkeypatch.setenv("WARRANTY_CLAIM_FILING_DAYS_AFTER_TERM", "-1")
    with pytest.raises(ValidationError):
        Settings()


PLACEHOLDERS = {
    "secret_key": ["demo-secret", "test-secret-key", "changeme", "aaaaaaaaaaaaaaaaaaaa",
                   "abababababababababab", "demo-0123456789abcdef", "test-0123456789abcdef",
                   "$(python -c 'import secrets; print(secrets.token_urlsafe(32))')"],
    "api_token": ["demo-token", "test-admin-token", "xxxxxxxxxxxxxxxxxxxxxxxx"],
    "public_key": ["pk_demo", "pk_live_...", "pk_test_store", "pk_live_0000000000000000"],
    "stripe_api_key": ["sk_test_demo", "sk_live_...", "sk_test_standin", "sk_test_xxxxxxxxxxxx"],
    "stripe_webhook_secret": ["whsec_demo", "whsec_...", "whsec_test"],
    "store_webhook_secret": ["demo-store-webhook-secret", "1111111111111111"],
}


@pytest.mark.parametrize(("name", "value"), [(name, value) for name, values in
                                             PLACEHOLDERS.items() for value in values])
def test_production_refuses_every_placeholder_the_readme_demo_or_tests_ship(monkeypatch, name,
                                                                            value):
    monkeypatch.delenv("WARRANTY_ENV", raising=False)
    values = {**REAL, "store_webhook_url": "https://shop.example/hooks",
              "store_webhook_secret": "Zr8Kq2Wm5Xv1Nb7Ct4Yh9Lp3", name: value}
    with pytest.raises(ValidationError, match=f"WARRANTY_{name.upper()}") as problem:
        Settings(**values)
    from warranty.core.settings import describe_problems

    text = describe_problems(problem.value)
    assert f"WARRANTY_{name.upper()}" in text and value not in text
    assert Settings(**{**values, "env": "demo"})  # the demo and the tests may use them


def test_production_needs_the_stores_own_public_key(monkeypatch):
    monkeypatch.delenv("WARRANTY_ENV", raising=False)
    with pytest.raises(ValidationError, match="WARRANTY_PUBLIC_KEY"):
        Settings(secret_key=REAL["secret_key"], api_token=REAL["api_token"])  # default pk_demo


SECRET_VALUE = "Sup3rSecretV4lue-do-not-print-9f8e7d"
BAD = {  # what an operator may get wrong, with a secret around that must never be printed
    "WARRANTY_SECRET_KEY": SECRET_VALUE, "WARRANTY_API_TOKEN": "aaaaaaaaaaaaaaaaaaaaaaaa",
    "WARRANTY_PUBLIC_KEY": "pk_demo", "WARRANTY_SMTP_PORT": "25-" + SECRET_VALUE,
    "WARRANTY_HOLDOUT_SHARE": "1.5", "WARRANTY_ALLOWED_ORIGINS": "https://a.example,ftp://" +
    SECRET_VALUE, "WARRANTY_STRIPE_WEBHOOK_SECRET": "whsec_demo"}


def _run(args: list[str], env: dict) -> subprocess.CompletedProcess:
    """A command with only these WARRANTY_* variables set."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WARRANTY_")}
    return subprocess.run(args, env={**clean, **env}, capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def _assert_named_not_shown(stderr: str, names: list[str]) -> None:
    """Every named variable is in the message; no value is, nor any traceback."""
    for name in names:
        assert name in stderr, stderr
    assert SECRET_VALUE not in stderr and "aaaaaaaa" not in stderr and "pk_demo" not in stderr
    assert "whsec_demo" not in stderr and "1.5" not in stderr
    assert "Traceback" not in stderr and "input_value" not in stderr


@pytest.mark.parametrize("command", [["migrate"], ["worker", "--once"], ["serve", "--dev"]])
def test_the_command_line_names_wrong_settings_without_their_values(command):
    done = _run([str(Path(sys.executable).with_name("warranty")), *command], BAD)
    assert done.returncode == 1
    _assert_named_not_shown(done.stderr, ["WARRANTY_SMTP_PORT", "WARRANTY_HOLDOUT_SHARE",
                                          "WARRANTY_ALLOWED_ORIGINS"])
    # Once those are right, the secrets are checked: named, not shown.
    fixed = {**BAD, "WARRANTY_SMTP_PORT": "25", "WARRANTY_HOLDOUT_SHARE": "0.1",
             "WARRANTY_ALLOWED_ORIGINS": "https://a.example"}
    done = _run([str(Path(sys.executable).with_name("warranty")), *command], fixed)
    assert done.returncode == 1
    _assert_named_not_shown(done.stderr, ["WARRANTY_API_TOKEN", "WARRANTY_PUBLIC_KEY",
                                          "WARRANTY_STRIPE_WEBHOOK_SECRET"])


def test_gunicorn_names_wrong_settings_without_their_values_and_stops():
    done = _run([sys.executable, "-m", "gunicorn", "--config", "python:warranty.gunicorn_conf",
                 "--bind", "127.0.0.1:0", "--workers", "1", "warranty.wsgi:app"], BAD)
    assert done.returncode != 0  # the arbiter stops: the app cannot load
    _assert_named_not_shown(done.stderr, ["WARRANTY_SMTP_PORT", "WARRANTY_HOLDOUT_SHARE"])
    imported = _run([sys.executable, "-c", "import warranty.wsgi"], BAD)
    assert imported.returncode == 4
    _assert_named_not_shown(imported.stderr, ["WARRANTY_SMTP_PORT"])


@pytest.mark.parametrize(("name", "value"), [
    # A Redis URI carries its password: a typo in the scheme must not print it.
    ("WARRANTY_RATELIMIT_STORAGE_URI", f"rediss//:{SECRET_VALUE}@cache.internal:6379"),
    ("WARRANTY_RATELIMIT_STORAGE_URI", f"{SECRET_VALUE}://cache.internal"),
    ("WARRANTY_RATE_LIMIT_SIGN_IN", f"10/{SECRET_VALUE}"),
    ("WARRANTY_RATE_LIMIT_STAFF_LOGIN_FAILURES", SECRET_VALUE),
])
def test_rate_limit_settings_are_checked_at_start_naming_the_variable_only(name, value):
    real = {f"WARRANTY_{key.upper()}": val for key, val in REAL.items()}
    imported = _run([sys.executable, "-c", "import warranty.wsgi"], {**real, name: value})
    assert imported.returncode == 4, imported.stderr
    assert name in imported.stderr and SECRET_VALUE not in imported.stderr
    assert "Traceback" not in imported.stderr
