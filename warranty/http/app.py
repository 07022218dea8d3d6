"""The Flask app factory."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from warranty.core.settings import Settings, load_settings
from warranty.http.json import OrjsonProvider


class _Flask(Flask):
    """Flask with JSON responses encoded by orjson."""

    json_provider_class = OrjsonProvider


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
    # lives server-side behind cookies of its own (warranty.http.web, warranty.auth.sessions).
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_SECURE"] = settings.base_url.startswith("https://")

    from warranty.customers import facts
    from warranty.http import babel, clients, cors, metrics, ratelimit, request_limits, session
    from warranty.http import errors as errors_http
    from warranty.http.api import (
        attention,
        catalog,
        checkout,
        claims,
        contracts,
        experiment,
        health,
        offers,
        orders_import,
        periods,
        reports,
        rules,
        stripe_webhook,
    )
    from warranty.http.web import customer, docs, embed, plans_add, staff, terms
    from warranty.http.web import reports as staff_reports

    facts.install()
    clients.install(app)
    babel.install(app)  # page language, store time zone, the catalogs in templates
    app.teardown_appcontext(session.close_session)
    request_limits.install(app)  # body limits per endpoint (warranty/http/request_limits.py)
    errors_http.register(app)
    metrics.install(app)
    for module in (health, catalog, rules, offers, checkout, stripe_webhook, contracts, claims,
                   experiment, plans_add, customer, staff, embed, reports, periods,
                   orders_import, staff_reports, attention, docs, terms):
        app.register_blueprint(module.bp)
    if settings.demo_store:
        from warranty.http.web import demo_store

        app.register_blueprint(demo_store.bp)
    offers.install_cache(app, settings)
    cors.install(app, settings.allowed_origins)  # before the limiter: preflights aren't counted
    ratelimit.install(app, settings)
    if settings.trusted_proxies:
        from warranty.core.settings import parse_networks
        from warranty.http.proxies import TrustedProxies

        app.wsgi_app = TrustedProxies(app.wsgi_app, parse_networks(settings.trusted_proxies))
    return app
