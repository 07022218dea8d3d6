"""warranty: a self-hosted extended-warranty service for online stores."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask

from warranty.json_provider import OrjsonProvider
from warranty.settings import Settings, load_settings


class _Flask(Flask):
    """Flask with JSON responses encoded by orjson."""

    json_provider_class = OrjsonProvider


__version__ = "0.1.0"


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask app; settings come from WARRANTY_* variables unless given (wrong ones
    raise ``SettingsProblem``, whose message names the variables, never their values)."""
    settings = settings or load_settings()
    if not Path(settings.upload_dir).is_absolute():  # settings copied without validation
        settings = settings.model_copy(update={"upload_dir": str(Path(
            settings.upload_dir).expanduser().resolve())})
    app = _Flask(__name__)
    app.config["SETTINGS"] = settings
    app.config["SECRET_KEY"] = settings.secret_key
    # Flask's signed cookie keeps the language and a visitor's CSRF token; who is signed in
    # lives server-side behind cookies of its own (warranty.web, warranty.auth_sessions).
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_SECURE"] = settings.base_url.startswith("https://")
    logging.basicConfig(level=logging.INFO)
    # The SDK logs every request at INFO; our own log says what matters.
    logging.getLogger("stripe").setLevel(logging.WARNING)

    from warranty import cors, db, errors_http, metrics, payments, ratelimit, request_limits
    from warranty.api import (
        attention,
        catalog,
        checkout,
        claims,
        contracts,
        core,
        experiment,
        offers,
        orders_import,
        periods,
        reports,
        rules,
        stripe_webhook,
    )
    from warranty.web import customer, docs, embed, plans_add, staff
    from warranty.web import reports as staff_reports

    payments.configure_stripe(settings)
    app.teardown_appcontext(db.close_session)
    request_limits.install(app)  # body limits per endpoint (warranty/request_limits.py)
    errors_http.register(app)
    metrics.install(app)
    for module in (core, catalog, rules, offers, checkout, stripe_webhook, contracts, claims,
                   experiment, plans_add, customer, staff, embed, reports, periods,
                   orders_import, staff_reports, attention, docs):
        app.register_blueprint(module.bp)
    if settings.demo_store:
        from warranty.web import demo_store

        app.register_blueprint(demo_store.bp)
    cors.install(app, settings.allowed_origins)  # before the limiter: preflights aren't counted
    ratelimit.install(app, settings)
    if settings.trusted_proxies:
        from warranty.proxies import TrustedProxies, parse_networks

        app.wsgi_app = TrustedProxies(app.wsgi_app, parse_networks(settings.trusted_proxies))
    return app
