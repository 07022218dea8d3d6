"""Typed settings read from WARRANTY_* environment variables."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Secrets that ship in docs, the demo or tests; refused anywhere that matters.
PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "demo-secret", "test-secret"}


class Settings(BaseSettings):
    """Every knob of the service; see README "Configuration"."""

    model_config = SettingsConfigDict(env_prefix="WARRANTY_", extra="ignore")

    env: Literal["production", "demo", "test"] = "production"
    database_url: str = "sqlite:///warranty.db"
    secret_key: str = ""
    # Bearer token for staff and finance endpoints (more can be issued with the CLI).
    api_token: str = ""
    # The store's public key, sent by the storefront embed.
    public_key: str = "pk_demo"

    currency: str = "jpy"
    timezone: str = "Asia/Tokyo"
    offer_ttl_seconds: int = 3600
    holdout_share: float = 0.10
    # Store's gross margin on orders, for LTV (average order value × margin × ...).
    gross_margin: Decimal = Field(default=Decimal("0.3"), ge=0, le=1)

    stripe_api_key: str = ""
    stripe_api_base: str | None = None
    stripe_webhook_secret: str = ""

    base_url: str = "http://127.0.0.1:5000"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    mail_from: str = "warranty@example.com"

    @field_validator("currency")
    @classmethod
    def _lower_currency(cls, value: str) -> str:
        """Stripe names currencies in lower case."""
        return value.strip().lower()

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        """Outside demo and test, a real secret is required, never a default one."""
        if self.env == "production":
            for name in ("secret_key", "api_token"):
                value = getattr(self, name)
                if value.lower() in PLACEHOLDER_SECRETS or len(value) < 16:
                    raise ValueError(
                        f"WARRANTY_{name.upper()} must be set to a real secret "
                        "(16+ characters) in production"
                    )
        return self

    @property
    def is_sqlite(self) -> bool:
        """True when the database is a SQLite file or memory."""
        return self.database_url.startswith("sqlite")


def demo_settings(**overrides) -> Settings:
    """Settings for the demo and tests: fixed, non-secret keys."""
    values = {
        "env": "demo",
        "secret_key": "demo-secret",
        "api_token": "demo-token",
        "stripe_api_key": "sk_test_demo",
        "stripe_webhook_secret": "whsec_demo",
    }
    values.update(overrides)
    return Settings(**values)
