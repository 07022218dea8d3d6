"""Flask-Babel on the app: templates' gettext reads the same catalogs as ``t()``, in the
page's language, and the store's time zone is Flask-Babel's too."""

from __future__ import annotations

from datetime import UTC, date, datetime

from flask import render_template_string
from flask_babel import format_datetime, get_locale, get_timezone

from warranty.core import i18n
from warranty.http.babel import local_date, local_datetime, utc_iso


def test_gettext_in_templates_is_the_catalogs_text(app):
    for lang, header in (("ja", "ja-JP"), ("en", "en-US")):
        with app.test_request_context("/my/plans", headers={"Accept-Language": header}):
            shown = render_template_string('{{ _("site.title") }}|{{ t("plans.months", '
                                           'months=3) }}|{{ gettext("nav.plans") }}')
            assert shown == "|".join([i18n.t(lang, "site.title"),
                                      i18n.t(lang, "plans.months", months=3),
                                      i18n.t(lang, "nav.plans")])
            assert str(get_locale()) == lang


def test_the_store_time_zone_is_flask_babels(app):
    with app.test_request_context("/my/plans?lang=en"):
        assert str(get_timezone()) == "Asia/Tokyo"
        when = datetime(2026, 1, 1, 23, 30, tzinfo=UTC)
        assert "8:30" in format_datetime(when)
        assert local_datetime(when) == "2026-01-02 08:30 JST"
        assert local_datetime(when.replace(tzinfo=None)) == "2026-01-02 08:30 JST"  # naive: UTC
        assert local_datetime(when, seconds=True) == "2026-01-02 08:30:00 JST"
        assert local_date(when) == "2026-01-02" and local_date(date(2026, 1, 1)) == "2026-01-01"
        assert utc_iso(when) == "2026-01-01T23:30:00Z"
        assert local_datetime(None) == local_date(None) == utc_iso(None) == ""
