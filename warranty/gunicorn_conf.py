"""gunicorn settings; override any of them with GUNICORN_CMD_ARGS.

The access log (``WARRANTY_ACCESS_LOG``: a file, or ``-`` for standard output) writes
gunicorn's usual line, with the values of token-carrying query parameters replaced
(``/my/sign-in?token=[redacted]``): mailed links sign customers in, and logs outlive them.

Prometheus metrics need one directory shared by the workers (multiprocess mode): set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory, or one is made under the system
temporary directory. It is emptied when gunicorn starts, and a dead worker's live gauges
are dropped when it exits.
"""

import os
import shutil
import tempfile
from pathlib import Path

from gunicorn.glogging import Logger

from warranty.core.logs import configure_logging
from warranty.core.redact import redact_query, redact_request_line, redact_target

bind = os.environ.get("WARRANTY_BIND", "127.0.0.1:5000")
# Threaded workers: a client that sends its request slowly holds one thread, not a whole
# process (with sync workers, two such clients stalled two workers and every other caller).
# Behind a buffering reverse proxy (README "Deployment") slow clients never reach us at all.
worker_class = "gthread"
workers = int(os.environ.get("WARRANTY_WORKERS", "2"))
threads = int(os.environ.get("WARRANTY_THREADS", "8"))
timeout = 30  # a worker whose main loop stops answering this long is restarted
graceful_timeout = 20
keepalive = 5  # seconds an idle keep-alive connection is kept open
accesslog = os.environ.get("WARRANTY_ACCESS_LOG") or None


class RedactingLogger(Logger):
    """gunicorn's logger, with tokens taken out of every access-log field that can hold
    the request's query string or a link (request line, query, referrer, raw URI)."""

    def atoms(self, resp, req, environ, request_time):
        """The usual atoms with secret query values replaced."""
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["r"] = redact_request_line(atoms["r"])
        atoms["q"] = redact_query(atoms.get("q") or "")
        atoms["f"] = redact_target(atoms.get("f") or "-")
        for key in ("{query_string}e", "{raw_uri}e", "{request_uri}e", "{http_referer}e",
                    "{referer}i"):
            if isinstance(atoms.get(key), str):
                atoms[key] = (redact_query(atoms[key]) if key == "{query_string}e"
                              else redact_target(atoms[key]))
        return atoms


logger_class = RedactingLogger
# Each worker opens its own database pool after the fork.
preload_app = False

# Set before any worker imports prometheus_client, which reads it at import time.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="warranty-metrics-")


def on_starting(server):
    """Start from an empty metrics directory: old files would add stale counts."""
    configure_logging()  # the arbiter's own log lines; each worker imports warranty.wsgi
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    if folder.exists():
        for item in folder.iterdir():
            if item.is_file() and item.suffix == ".db":
                item.unlink()
            elif item.is_dir():
                shutil.rmtree(item)
    folder.mkdir(parents=True, exist_ok=True)


def child_exit(server, worker):
    """Drop the live gauges of a worker that exited; its counters stay summed."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
