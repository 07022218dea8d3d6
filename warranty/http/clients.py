"""What the app holds for its requests besides settings: the Stripe client."""

from __future__ import annotations

from flask import Flask, current_app

from warranty.payments.client import StripeClient, make_client

STRIPE = "warranty.stripe"


def install(app: Flask) -> None:
    """Build the app's one Stripe client from its settings (never the SDK's globals)."""
    app.extensions[STRIPE] = make_client(app.config["SETTINGS"])


def stripe_client() -> StripeClient:
    """The current app's Stripe client."""
    return current_app.extensions[STRIPE]
