"""The service's log configuration, applied by each entry point (never by the app factory).

``warranty.wsgi`` (gunicorn), ``warranty serve``, ``warranty worker``, the development server
and ``gunicorn_conf`` call :func:`configure_logging` once at start-up; a program that embeds
the app (a test, another WSGI server) keeps its own logging as it set it up.
"""

from __future__ import annotations

import logging


def configure_logging(level: int = logging.INFO) -> None:
    """Log to standard error at ``level``; the Stripe SDK only from WARNING (it logs every
    request at INFO, and our own log says what matters). Does nothing to a root logger that
    already has handlers (``logging.basicConfig``'s rule)."""
    logging.basicConfig(level=level)
    logging.getLogger("stripe").setLevel(logging.WARNING)
