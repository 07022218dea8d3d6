"""The page language and the store's time zone for templates, through Flask-Babel.

Flask-Babel asks :func:`page_language` for the locale and the settings for the time zone
(``WARRANTY_TIMEZONE``, ``Asia/Tokyo`` by default). Its translations are the catalogs of
``warranty.core.i18n`` (the ``.po`` files, read at start), so ``{{ _("key") }}`` and
``{{ t("key") }}`` in a template and ``i18n.t(lang, "key")`` in a mail are the same text.
Templates show times with the filters installed here, never with ``strftime``:
``local_datetime`` (a timestamp, stored in UTC, in the store's zone with its abbreviation),
``local_date`` (a timestamp's calendar day there; a date as it is) and ``utc_iso`` (for
``<time datetime>``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import Flask, current_app, g, request, session
from flask_babel import Babel, Domain
from werkzeug.utils import cached_property

from warranty.core import i18n

# Staff pages were English-only before they had Japanese: a browser that states no language
# keeps getting them in English (customers get the store's default, Japanese).
STAFF_DEFAULT = "en"


def _staff_page() -> bool:
    path = request.path
    return path == "/staff" or path.startswith("/staff/")


def choose_language() -> str:
    """?lang= (remembered in the session cookie, for customer and staff pages alike), else
    the remembered one, else Accept-Language, else the default (``ja``; ``en`` on staff
    pages)."""
    asked = request.args.get("lang")
    if asked in i18n.LANGUAGES:
        session["lang"] = asked
        return asked
    remembered = session.get("lang")
    if remembered in i18n.LANGUAGES:
        return remembered
    default = STAFF_DEFAULT if _staff_page() else i18n.DEFAULT
    return request.accept_languages.best_match(i18n.LANGUAGES, default=default)


def page_language() -> str:
    """The language of the page being rendered."""
    if "lang" not in g:
        g.lang = choose_language()
    return g.lang


class _Catalogs(Domain):
    """Flask-Babel's translations are warranty.core.i18n's catalogs (no .mo files)."""

    def get_translations(self):
        return i18n.translations(page_language())


class _Babel(Babel):
    @cached_property
    def domain_instance(self):
        return _Catalogs()


def store_zone() -> ZoneInfo:
    """The store's time zone."""
    return ZoneInfo(current_app.config["SETTINGS"].timezone)


def local(when: datetime) -> datetime:
    """A stored timestamp (UTC; naive ones are UTC) in the store's time zone."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(store_zone())


def local_datetime(when: datetime | None, seconds: bool = False) -> str:
    """``2026-12-01 09:30 JST``: a timestamp as the store's clock shows it."""
    if when is None:
        return ""
    return local(when).strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")


def utc_iso(when: datetime | None) -> str:
    """``2026-12-01T00:30:00Z``: a stored timestamp for machines (``<time datetime>``)."""
    if when is None:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def local_date(when: datetime | date | None) -> str:
    """``2026-12-01``: a timestamp's calendar date in the store's zone (a date as it is)."""
    if when is None:
        return ""
    if isinstance(when, datetime):
        return local(when).date().isoformat()
    return when.isoformat()


def error_text(code: str, message: str | None, status: int | None = None) -> str:
    """What a page says about an error, in the page's language.

    Domain errors carry an English message written for people, often with specifics (which
    claim, which status): an English page shows it. Other languages show the catalog's text
    for the error's code (``error.<code>``), else the general text of its status; so does an
    English page for an error without a message."""
    lang = page_language()
    if lang == "en" and message:
        return message
    for key in (f"error.{code}", f"error.status.{status}.text"):
        if i18n.has(key):
            return i18n.t(lang, key)
    return i18n.t(lang, "error.general")


def install(app: Flask) -> None:
    """Flask-Babel on ``app``: locale from the page language, the store's zone, the catalogs,
    the time filters and the page helpers (``lang_url``, ``error_text``, ``has_text``)."""
    settings = app.config["SETTINGS"]
    _Babel(app, default_locale=i18n.DEFAULT, default_timezone=settings.timezone,
           locale_selector=page_language, timezone_selector=lambda: settings.timezone)
    app.jinja_env.filters.update(local_datetime=local_datetime, local_date=local_date,
                               utc_iso=utc_iso)

    @app.context_processor
    def _language_helpers() -> dict:
        return {"lang_url": lang_url, "error_text": error_text, "has_text": i18n.has}


def lang_url(code: str) -> str:
    """This page in language ``code``: the same path and query (a mailed link's ``token``
    kept, also when the page answers a form that carried it), with ``lang`` set.

    A page rendered by a POST whose path takes no GET (a form's answer) switches on the
    page the view named in ``g.page_path``, else on its realm's first page.
    """
    path = request.path
    if request.method != "GET":
        rule = request.url_rule
        if g.get("page_path"):
            path = g.page_path
        elif rule is None or "GET" not in (rule.methods or ()):
            path = "/staff/claims" if path.startswith("/staff") else "/my/plans"
    args = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
    if "token" not in request.args and request.form.get("token"):
        args.insert(0, ("token", request.form["token"]))
    args.append(("lang", code))
    return f"{path}?{urlencode(args)}"
