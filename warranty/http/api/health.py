"""Service endpoints: liveness, health and the OpenAPI document."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, jsonify

from warranty import __version__
from warranty.http.api.spec import openapi_document
from warranty.http.session import get_session

bp = Blueprint("core", __name__)


@bp.get("/livez")
def livez():
    """The process answers (no database call): also the benchmark's trivial endpoint."""
    return jsonify({"status": "ok"})


@bp.get("/healthz")
def healthz():
    """The process answers and the database is reachable."""
    try:
        get_session().exec(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        return jsonify({"status": "unavailable", "database": "unreachable"}), 503
    return jsonify({"status": "ok", "database": "ok", "version": __version__})


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI document of every JSON endpoint."""
    return jsonify(openapi_document(title="warranty", version=__version__))
