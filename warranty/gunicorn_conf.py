"""gunicorn settings; override any of them with GUNICORN_CMD_ARGS."""

import os

bind = os.environ.get("WARRANTY_BIND", "127.0.0.1:5000")
workers = int(os.environ.get("WARRANTY_WORKERS", "2"))
threads = int(os.environ.get("WARRANTY_THREADS", "1"))
timeout = 30
graceful_timeout = 20
accesslog = os.environ.get("WARRANTY_ACCESS_LOG") or None
# Each worker opens its own database pool after the fork.
preload_app = False
