"""The development server (``make demo``, ``warranty serve --dev``) with a request log that
never writes a link's token."""

from __future__ import annotations

from flask import Flask
from werkzeug.serving import WSGIRequestHandler

from warranty.core.logs import configure_logging
from warranty.core.redact import redact_text


class RedactingRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler; every line it logs has token values replaced."""

    def log(self, type: str, message: str, *args) -> None:
        """Format the line as werkzeug does, then take the tokens out."""
        line = message % args if args else message
        super().log(type, "%s", redact_text(line))


def run(app: Flask, *, host: str, port: int) -> None:
    """Serve ``app`` with Flask's threaded development server until interrupted."""
    configure_logging()
    app.run(host=host, port=port, threaded=True, request_handler=RedactingRequestHandler)
