"""Settings refuse placeholder secrets outside demo and test."""

import pytest
from pydantic import ValidationError

from warranty.settings import Settings


def test_production_requires_real_secrets(monkeypatch):
    monkeypatch.delenv("WARRANTY_ENV", raising=False)
    with pytest.raises(ValidationError, match="WARRANTY_SECRET_KEY"):
        Settings(secret_key="changeme", api_token="x" * 32)
    with pytest.raises(ValidationError, match="WARRANTY_API_TOKEN"):
        Settings(secret_key="s" * 32, api_token="secret")
    ok = Settings(secret_key="s" * 32, api_token="t" * 32, currency="USD")
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
