"""`make demo`: everything a newcomer needs, in one process, with nothing configured.

Migrates var/demo.db (SQLite), loads the demo rules and catalog, starts the local Stripe
stand-in on 127.0.0.1:12111, an SMTP sink that prints every mail (127.0.0.1:8025), a
background worker (mail, store webhooks, refund retries) and the service on
http://127.0.0.1:5000.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STRIPE_PORT = int(os.environ.get("DEMO_STRIPE_PORT", "12111"))
APP_PORT = int(os.environ.get("DEMO_PORT", "5000"))
SMTP_PORT = int(os.environ.get("DEMO_SMTP_PORT", "8025"))


DEMO_STAFF = ("admin@demo.example", "demo-password-123")


def _demo_staff(session) -> None:
    """An admin staff account for the demo's staff pages and reports (once)."""
    from sqlmodel import select

    from warranty.staff.accounts import create_staff
    from warranty.staff.models import StaffUser

    email, password = DEMO_STAFF
    if session.exec(select(StaffUser).where(StaffUser.email == email)).first() is None:
        create_staff(session=session, email=email, role="admin", password=password)


def main() -> None:
    """Set up and serve the demo until Ctrl-C (or SIGTERM)."""
    import signal
    import threading

    # A process started in the background by a shell (or by a test runner that was) inherits
    # SIGINT ignored, and Python then leaves it ignored: Ctrl-C and `kill -INT` would do
    # nothing. The demo always stops on either signal.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    from devtools.smtp_sink import SmtpSink, print_mail
    from devtools.stripe_standin import StripeStandin

    (ROOT / "var").mkdir(exist_ok=True)
    standin = StripeStandin(port=STRIPE_PORT)
    stripe_url = standin.start()
    sink = SmtpSink(port=SMTP_PORT, on_mail=print_mail)
    sink.start()
    os.environ["WARRANTY_SMTP_HOST"] = "127.0.0.1"
    os.environ["WARRANTY_SMTP_PORT"] = str(SMTP_PORT)
    os.environ.setdefault("WARRANTY_DATABASE_URL", f"sqlite:///{ROOT / 'var' / 'demo.db'}")
    os.environ["WARRANTY_ENV"] = "demo"
    os.environ.setdefault("WARRANTY_SECRET_KEY", "demo-secret")
    os.environ.setdefault("WARRANTY_API_TOKEN", "demo-token")
    os.environ.setdefault("WARRANTY_PUBLIC_KEY", "pk_demo")
    os.environ.setdefault("WARRANTY_STRIPE_API_KEY", "sk_test_demo")
    os.environ.setdefault("WARRANTY_STRIPE_WEBHOOK_SECRET", "whsec_demo")
    os.environ["WARRANTY_STRIPE_API_BASE"] = stripe_url
    os.environ.setdefault("WARRANTY_BASE_URL", f"http://127.0.0.1:{APP_PORT}")
    # The provider the demo's terms and certificates name (a made-up store).
    os.environ.setdefault("WARRANTY_STORE_LEGAL_NAME", "デモ電機株式会社 / Demo Denki K.K.")
    os.environ.setdefault("WARRANTY_STORE_ADDRESS", "東京都千代田区丸の内1-1-1 (demo)")
    os.environ.setdefault("WARRANTY_STORE_CONTACT", "support@demo.example")

    from devtools.demo_data import load_demo
    from warranty.core.logs import configure_logging
    from warranty.core.settings import load_settings
    from warranty.db.engine import migrate, session_scope
    from warranty.http import dev_server
    from warranty.http.app import create_app
    from warranty.payments.client import make_client
    from warranty.worker import run_forever

    settings = load_settings()
    # Stripe's events reach the service exactly as they would from Stripe: signed, over HTTP.
    standin.register_webhook("warranty", f"http://127.0.0.1:{APP_PORT}/stripe/webhook",
                             settings.stripe_webhook_secret)
    migrate(settings.database_url)
    with session_scope(settings.database_url) as session:
        load_demo(session=session, currency=settings.currency)
        _demo_staff(session)
    stop = threading.Event()
    configure_logging()
    worker = {"settings": settings, "stripe_client": make_client(settings), "stop": stop}
    threading.Thread(target=run_forever, kwargs=worker,
                     name="worker", daemon=True).start()
    print(f"Stripe stand-in: {stripe_url}")
    print(f"SMTP sink:       127.0.0.1:{SMTP_PORT} (mails are printed here)")
    print(f"demo store:      http://127.0.0.1:{APP_PORT}/  (the embed on every page; "
          f"buy with the stand-in's test card)")
    print(f"warranty API:    http://127.0.0.1:{APP_PORT}/api/v1  (staff token: "
          f"{settings.api_token})")
    print(f"customer pages:  http://127.0.0.1:{APP_PORT}/my/plans  (email + order reference "
          "of a demo order shows its plans; the link mailed to the sink signs in)")
    print(f"staff pages:     http://127.0.0.1:{APP_PORT}/staff/login  ({DEMO_STAFF[0]} / "
          f"{DEMO_STAFF[1]}): claims queue, customer history, /staff/reports")
    print(f"try:             curl 'http://127.0.0.1:{APP_PORT}/api/v1/offers?sku=TV-55-OLED"
          f"&key={settings.public_key}'")
    try:
        # Its request log replaces the tokens of mailed links (warranty.core.redact).
        dev_server.run(create_app(settings), host="127.0.0.1", port=APP_PORT)
    finally:
        stop.set()
        sink.stop()
        standin.stop()


if __name__ == "__main__":
    main()
