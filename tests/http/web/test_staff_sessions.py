"""Staff-page sessions are server-side: they expire, end on logout everywhere the cookie was
copied, can be revoked from the command line, and never share a cookie with customers."""

from __future__ import annotations

import time
from datetime import timedelta

import requests
import sqlalchemy as sa
from click.testing import CliRunner
from sqlmodel import select

from tests.factories import STAFF_PASSWORD, add_staff, paid_order
from tests.http.web.pages import CSRF, csrf, sign_in_customer, sign_in_staff
from warranty.auth.models import AuthSession
from warranty.cli import main
from warranty.core.dates import utcnow


def _signed_in(client) -> bool:
    """Whether the client's session opens the staff queue."""
    return client.get("/staff/claims").status_code == 200


def _cookie(client, name: str = "wty_staff", path: str = "/staff"):
    """The client's cookie ``name`` (or None)."""
    return client.get_cookie(name, path=path)


def test_a_staff_session_expires(client, db, settings):
    add_staff(db)
    sign_in_staff(client)
    assert _signed_in(client)
    row = db.exec(select(AuthSession).where(AuthSession.kind == "staff")).one()
    hours = timedelta(hours=settings.staff_session_hours)
    db.exec(sa.update(AuthSession).values(created_at=utcnow() - hours + timedelta(minutes=1)))
    db.commit()
    assert _signed_in(client)  # a minute before the end
    db.exec(sa.update(AuthSession).values(created_at=utcnow() - hours - timedelta(seconds=1)))
    db.commit()
    assert client.get("/staff/claims").headers["Location"].startswith("/staff/login")
    db.exec(sa.update(AuthSession).where(AuthSession.id == row.id)
            .values(created_at=utcnow(), expires_at=utcnow() - timedelta(seconds=1)))
    db.commit()
    assert not _signed_in(client)  # past the row's own end


def test_logout_ends_the_session_for_a_copied_cookie_too(live_server, db):
    add_staff(db)
    browser, thief = requests.Session(), requests.Session()
    form = CSRF.search(browser.get(f"{live_server}/staff/login", timeout=10).text).group(1)
    signed = browser.post(f"{live_server}/staff/login", timeout=10, allow_redirects=False,
                          data={"email": "alice@store.example", "password": STAFF_PASSWORD,
                                "csrf_token": form})
    assert signed.status_code == 303
    thief.cookies.update(browser.cookies)  # every cookie the browser holds, copied
    assert thief.get(f"{live_server}/staff/claims", timeout=10,
                     allow_redirects=False).status_code == 200
    page = browser.get(f"{live_server}/staff/claims", timeout=10).text
    out = browser.post(f"{live_server}/staff/logout", timeout=10, allow_redirects=False,
                       data={"csrf_token": CSRF.search(page).group(1)})
    assert out.status_code == 303
    for client in (thief, browser):
        again = client.get(f"{live_server}/staff/claims", timeout=10, allow_redirects=False)
        assert again.status_code == 302 and "/staff/login" in again.headers["Location"]
    db.commit()
    row = db.exec(select(AuthSession)).one()
    assert row.revoked_at is not None and row.subject == "alice@store.example"


def test_a_new_session_id_at_every_sign_in(app, client, db):
    add_staff(db)
    client.set_cookie("wty_staff", "planted-by-someone-else-0123456789", path="/staff")
    sign_in_staff(client)
    first = _cookie(client).value
    assert first != "planted-by-someone-else-0123456789"
    sign_in_staff(client)
    second = _cookie(client).value
    assert second != first
    old = app.test_client()
    old.set_cookie("wty_staff", first, path="/staff")
    assert not _signed_in(old) and _signed_in(client)  # signing in again ended the old one
    rows = db.exec(select(AuthSession).order_by(AuthSession.id)).all()
    assert [r.revoked_at is not None for r in rows] == [True, False]
    assert all(first not in (r.token_hash, r.subject) for r in rows)  # only hashes stored


def test_staff_and_customer_sessions_have_cookies_of_their_own(app, client, db, settings):
    add_staff(db)
    paid_order(db)
    sign_in_staff(client)
    sign_in_customer(client, settings)
    staff, customer = _cookie(client), _cookie(client, "wty_customer", "/")
    assert staff.value != customer.value and staff.http_only and customer.http_only
    assert (staff.path, customer.path) == ("/staff", "/")
    assert staff.same_site == "Lax" and customer.same_site == "Lax"
    assert _signed_in(client) and "Test TV" in client.get("/my/plans").get_data(as_text=True)
    # One kind's id is no use as the other.
    swapped = app.test_client()
    swapped.set_cookie("wty_staff", customer.value, path="/staff")
    swapped.set_cookie("wty_customer", staff.value, path="/")
    assert not _signed_in(swapped)
    assert "Test TV" not in swapped.get("/my/plans").get_data(as_text=True)
    # Signing out of the staff pages leaves the customer pages signed in, and back.
    client.post("/staff/logout", data={"csrf_token": csrf(client, "/staff/claims")})
    assert not _signed_in(client) and "Test TV" in client.get("/my/plans").get_data(
        as_text=True)


def test_the_form_token_changes_at_sign_in(client, db):
    add_staff(db)
    before = csrf(client, "/staff/login")
    sign_in_staff(client)
    after = csrf(client, "/staff/claims")
    assert after != before  # the form token changes with the session
    stale = client.post("/staff/logout", data={"csrf_token": before})
    assert stale.status_code == 400 and _signed_in(client)


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


def test_a_disabled_account_is_signed_out(client, db):
    user = add_staff(db)
    sign_in_staff(client)
    user.disabled_at = utcnow()
    db.add(user)
    db.commit()
    assert not _signed_in(client)
