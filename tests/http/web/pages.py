"""Helpers for page tests: CSRF tokens from the served forms, signing in."""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import parse_qs, urlsplit

from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from tests.factories import STAFF_PASSWORD
from warranty.auth import links as magic_links

# Page tests run against the real today: a plan bought in 2024 has incidents in the past.
PURCHASE = date(2024, 1, 10)  # breakdown cover from 2025-01-10, term to 2027-01-09
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf(client, path: str = "/my/plans") -> str:
    """The CSRF token of this client's session, read from a served form."""
    html = client.get(path).get_data(as_text=True)
    match = CSRF.search(html)
    assert match, f"no CSRF field on {path}"
    return match.group(1)


def link_token(link: str) -> str:
    """The token of a mailed link."""
    return parse_qs(urlsplit(link).query)["token"][0]


def sign_in_customer(client, settings, email: str = "buyer@example.com") -> None:
    """Sign a customer in through their mailed link: open it, then press the button."""
    link = magic_links.plans_link(settings, email)
    path = link.removeprefix(settings.base_url)
    page = client.get(path)
    assert page.status_code == 200, page.get_data(as_text=True)
    token = CSRF.search(page.get_data(as_text=True)).group(1)
    response = client.post("/my/sign-in", data={"csrf_token": token,
                                                "token": link_token(link)})
    assert response.status_code == 303, response.get_data(as_text=True)


def sign_in_staff(client, email: str = "alice@store.example",
                  password: str = STAFF_PASSWORD) -> None:
    """Sign a staff member in through the login form."""
    token = csrf(client, "/staff/login")
    response = client.post("/staff/login", data={"email": email, "password": password,
                                                 "csrf_token": token})
    assert response.status_code == 303, response.get_data(as_text=True)


def multipart(fields: dict) -> dict:
    """Keyword arguments for ``client.post`` with a multipart body built in memory.

    Werkzeug's test client spools big bodies to a temporary file it never closes (a
    ResourceWarning, an error under filterwarnings=error), so the body is encoded here.
    ``files`` is a list of (BytesIO, filename) like the test client takes.
    """
    values = MultiDict()
    for key, value in fields.items():
        if key == "files":
            for stream, name in value:
                values.add(key, FileStorage(stream=stream, filename=name))
        else:
            values.add(key, value)
    boundary, body = encode_multipart(values)
    return {"data": body, "content_type": f"multipart/form-data; boundary={boundary}"}
