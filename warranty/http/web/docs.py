"""Human-readable API docs at /docs: Swagger UI on the service's own /openapi.json.

Swagger UI's files come from the installed flask-swagger-ui package (its ``dist`` folder,
Apache-2.0, see its LICENSE there); the service serves them itself, so the page needs no CDN
and runs under a CSP that allows this origin only.
"""

from __future__ import annotations

from pathlib import Path

import flask_swagger_ui
from flask import Blueprint, abort, render_template, send_from_directory

bp = Blueprint("docs", __name__)
DIST = Path(flask_swagger_ui.__file__).resolve().parent / "dist"
ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css",
          "favicon-32x32.png": "image/png", "LICENSE": "text/plain"}
# Swagger UI draws its icons from data: URLs and sets styles through the DOM (not inline
# markup); it fetches the document from this origin, and "Try it out" calls this origin.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


@bp.get("/docs")
def page():
    """The page; static/docs.js starts Swagger UI on the URL in its data attribute."""
    return render_template("docs/index.html"), 200, {"Content-Security-Policy": CSP}


@bp.get("/docs/assets/<name>")
def asset(name: str):
    """One of Swagger UI's files, from the installed package (only those the page uses)."""
    if name not in ASSETS:
        abort(404)
    return send_from_directory(DIST, name, mimetype=ASSETS[name], max_age=3600)
