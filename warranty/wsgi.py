"""WSGI entry point for gunicorn: ``gunicorn warranty.wsgi:app``."""

from warranty import create_app

app = create_app()
