"""The storefront embed: one script and one stylesheet, served by the service itself."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, send_from_directory

bp = Blueprint("embed", __name__)
STATIC = Path(__file__).resolve().parent.parent / "static"
# Short enough that a fix reaches storefronts within the hour; revalidated by ETag after.
MAX_AGE = 3600


def _asset(name: str, mimetype: str):
    """Serve a file from warranty/static with caching and CORS for cross-origin stores."""
    response = send_from_directory(STATIC, name, mimetype=mimetype, max_age=MAX_AGE)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


@bp.get("/embed.js")
def embed_js():
    """The embed script (no build step; see the header of the file for its data attributes)."""
    return _asset("embed.js", "text/javascript")


@bp.get("/embed.css")
def embed_css():
    """The embed's stylesheet, loaded by the script (no inline styles: strict CSP works)."""
    return _asset("embed.css", "text/css")
