"""One mailed link pressed at the same moment from several browsers signs in exactly one.

Real threads released together by a barrier, each its own HTTP client on its own connection
to the served app; on PostgreSQL the link's one-time id (a primary key) decides the race."""

from __future__ import annotations

import threading

import requests
from sqlmodel import func, select

from tests.factories import paid_order
from tests.http.web.pages import CSRF, PURCHASE, link_token
from warranty.auth import links as magic_links
from warranty.auth.models import AuthSession, UsedLink


def test_concurrent_confirms_of_one_link_sign_in_once(live_server, db, settings):
    paid_order(db, purchase_date=PURCHASE)
    link = magic_links.plans_link(settings, "buyer@example.com")
    path = link.removeprefix(settings.base_url)
    browsers = [requests.Session() for _ in range(5)]
    forms = []
    for browser in browsers:  # each opens the link (no sign-in) and gets its form token
        page = browser.get(live_server + path, timeout=10)
        forms.append({"csrf_token": CSRF.search(page.text).group(1),
                      "token": link_token(link)})
    start, results = threading.Barrier(len(browsers)), []

    def confirm(browser, form):
        start.wait()
        res = browser.post(f"{live_server}/my/sign-in", data=form, timeout=30,
                           allow_redirects=False)
        results.append((res.status_code, browser))

    threads = [threading.Thread(target=confirm, args=pair)
               for pair in zip(browsers, forms, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(status for status, _ in results) == [303] + [410] * 4, results
    winner = next(browser for status, browser in results if status == 303)
    losers = [browser for status, browser in results if status != 303]
    assert "Test TV" in winner.get(f"{live_server}/my/plans", timeout=10).text
    assert all("Test TV" not in b.get(f"{live_server}/my/plans", timeout=10).text
               for b in losers)
    db.commit()
    assert db.exec(select(func.count()).select_from(AuthSession)).one() == 1
    assert db.exec(select(func.count()).select_from(UsedLink)).one() == 1
