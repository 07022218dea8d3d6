"""Settings with fixed, non-secret keys for the tests and benchmarks (never the service)."""

from __future__ import annotations

from warranty.core.settings import Settings


def demo_settings(**overrides) -> Settings:
    """Settings for the tests and benchmarks: fixed, non-secret keys (``overrides`` on top)."""
    values = {
        "env": "demo",
        "secret_key": "demo-secret",
        "api_token": "demo-token",
        "stripe_api_key": "sk_test_demo",
        "stripe_webhook_secret": "whsec_demo",
    }
    values.update(overrides)
    return Settings(**values)
