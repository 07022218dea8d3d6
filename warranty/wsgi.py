"""WSGI entry point for gunicorn: ``gunicorn warranty.wsgi:app``."""

import sys

from warranty.core.logs import configure_logging
from warranty.core.settings import SettingsProblem
from warranty.http.app import create_app

configure_logging()
try:
    app = create_app()
except SettingsProblem as exc:
    # What is wrong, by variable name only (never a value), and no traceback. Exit status 4
    # is gunicorn's "application failed to load": the arbiter stops instead of restarting
    # workers that would fail the same way.
    print(str(exc), file=sys.stderr, flush=True)
    raise SystemExit(4) from None
