"""Staff-page sessions expire and can be revoked from the command line."""

from __future__ import annotations

import time

from click.testing import CliRunner

from tests.factories import add_staff
from tests.web.pages import sign_in_staff
from warranty.cli import main


def _signed_in(client) -> bool:
    """Whether the client's session opens the staff queue."""
    return client.get("/staff/claims").status_code == 200


def test_a_staff_session_expires(client, db, settings):
    add_staff(db)
    sign_in_staff(client)
    assert _signed_in(client)
    with client.session_transaction() as cookie:
        cookie["staff_at"] = time.time() - settings.staff_session_hours * 3600 + 60
    assert _signed_in(client)  # a minute before the end
    with client.session_transaction() as cookie:
        cookie["staff_at"] = time.time() - settings.staff_session_hours * 3600 - 1
    assert client.get("/staff/claims").headers["Location"].startswith("/staff/login")
    with client.session_transaction() as cookie:
        del cookie["staff_at"]  # a session from before sign-in times were kept
    assert not _signed_in(client)


def test_revoking_signs_a_staff_member_out_everywhere(app, db, settings, monkeypatch):
    add_staff(db)
    add_staff(db, email="bob@store.example")
    laptop, phone, colleague = app.test_client(), app.test_client(), app.test_client()
    sign_in_staff(laptop)
    sign_in_staff(phone)
    sign_in_staff(colleague, email="bob@store.example")
    for name, value in {"WARRANTY_ENV": "test", "WARRANTY_DATABASE_URL": settings.database_url,
                        "WARRANTY_SECRET_KEY": settings.secret_key}.items():
        monkeypatch.setenv(name, value)
    res = CliRunner().invoke(main, ["revoke-staff-sessions", "Alice@Store.example"])
    assert res.exit_code == 0 and "alice@store.example" in res.output
    assert not _signed_in(laptop) and not _signed_in(phone)
    assert _signed_in(colleague)
    time.sleep(0.01)
    sign_in_staff(laptop)  # signing in again works
    assert _signed_in(laptop) and not _signed_in(phone)
    unknown = CliRunner().invoke(main, ["revoke-staff-sessions", "nobody@store.example"])
    assert unknown.exit_code != 0 and "no staff account" in unknown.output
