"""The dashboard and the exports page speak Japanese and English throughout: no text falls
back to its message key, whatever the reports hold (every arm, placement, category, claim
outcome and job status of a synthetic year)."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlmodel import select

from devtools import synth
from tests.factories import add_staff
from tests.http.web.pages import sign_in_staff
from warranty.db.engine import session_scope
from warranty.exports import services as jobs
from warranty.exports.models import ExportJob
from warranty.reports.period import Period

KEY = re.compile(r"\breports\.[a-z_]+\.[a-z_.0-9]+")


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_no_text_is_left_as_its_key(client, db, settings, lang):
    synth.generate(settings.database_url, orders=600, plans=150, start=date(2025, 1, 1),
                   days=365, seed=5, log=lambda text: None, holdout_lost_share=0.15)
    add_staff(db, email="books@store.example", role="finance")
    sign_in_staff(client, email="books@store.example")
    for day, status in enumerate(("pending", "running", "done", "dead"), start=1):
        with session_scope(settings.database_url) as session:
            job = jobs.start_export(session=session, report="movements", fmt="csv",
                                    period=Period(date(2025, 1, 1), date(2025, 1, day)),
                                    requested_by="test")
            job.status = status
    for path in ("/staff/reports?from=2025-01-01&to=2025-12-31", "/staff/reports/exports"):
        page = client.get(f"{path}{'&' if '?' in path else '?'}lang={lang}")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert KEY.findall(html) == [], path
        assert f'<html lang="{lang}"' in html
    assert len(db.exec(select(ExportJob)).all()) == 4
