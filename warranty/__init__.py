"""warranty: a self-hosted extended-warranty service for online stores."""

from __future__ import annotations

import logging

from flask import Flask

from warranty.settings import Settings

__version__ = "0.1.0"


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask app; settings come from WARRANTY_* variables unless given."""
    settings = settings or Settings()
    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    app.config["SECRET_KEY"] = settings.secret_key
    # Product bulk upserts and claim uploads are the largest bodies we accept.
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024 * 1024
    app.json.sort_keys = False
    logging.basicConfig(level=logging.INFO)
    # The SDK logs every request at INFO; our own log says what matters.
    logging.getLogger("stripe").setLevel(logging.WARNING)

    from warranty import db, errors_http, payments
    from warranty.api import (
        catalog,
        checkout,
        core,
        offers,
        orders_import,
        reports,
        rules,
        stripe_webhook,
    )

    payments.configure_stripe(settings)
    app.teardown_appcontext(db.close_session)
    errors_http.register(app)
    from warranty.web import plans_add
    from warranty.web import reports as staff_reports

    for module in (core, catalog, rules, offers, checkout, stripe_webhook, plans_add, reports,
                   orders_import, staff_reports):
        app.register_blueprint(module.bp)
    return app
