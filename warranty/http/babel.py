"""The page language and the store's time zone for templates, through Flask-Babel.

Flask-Babel asks :func:`page_language` for the locale and the settings for the time zone
(``WARRANTY_TIMEZONE``, ``Asia/Tokyo`` by default). Its translations are the catalogs of
``warranty.core.i18n`` (the ``.po`` files, read at start), so ``{{ _("key") }}`` and
``{{ t("key") }}`` in a template and ``i18n.t(lang, "key")`` in a mail are the same text.
Templates show times with the filters installed here: ``local_datetime`` (a timestamp,
stored in UTC, in the store's zone with its abbreviation) and ``local_date``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from flask import Flask, current_app, g, request, session
from flask_babel import Babel, Domain
from werkzeug.utils import cached_property

from warranty.core import i18n


def choose_language() -> str:
    """?lang= (remembered in the session), else the remembered one, else Accept-Language."""
    asked = request.args.get("lang")
    if asked in i18n.LANGUAGES:
        session["lang"] = asked
        return asked
    remembered = session.get("lang")
    if remembered in i18n.LANGUAGES:
        return remembered
    return request.accept_languages.best_match(i18n.LANGUAGES, default=i18n.DEFAULT)


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


def local_date(when: datetime | date | None) -> str:
    """``2026-12-01``: a timestamp's calendar date in the store's zone (a date as it is)."""
    if when is None:
        return ""
    if isinstance(when, datetime):
        return local(when).date().isoformat()
    return when.isoformat()


def install(app: Flask) -> None:
    """Flask-Babel on ``app``: locale from the page language, the store's zone, the catalogs,
    and the time filters."""
    settings = app.config["SETTINGS"]
    _Babel(app, default_locale=i18n.DEFAULT, default_timezone=settings.timezone,
           locale_selector=page_language, timezone_selector=lambda: settings.timezone)
    app.jinja_env.filters.update(local_datetime=local_datetime, local_date=local_date)
