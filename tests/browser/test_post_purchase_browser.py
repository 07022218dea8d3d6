"""A real browser follows a signed post-purchase link, picks a plan and pays on the stand-in.

Shows the page works without JavaScript and that its CSP lets the form's redirect reach the
payment page (browsers apply form-action to that hop)."""

import re
from pathlib import Path

from sqlmodel import select

from tests.e2e.test_post_purchase import buy_tvs_without_plans
from tests.factories import add_product, load_rules
from tests.stripe_helpers import wait_for
from warranty.contracts.models import Contract
from warranty.db.engine import Session, get_engine
from warranty.post_purchase import plans as post_purchase

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


def test_customer_adds_a_plan_through_the_signed_link(browser, stripe_live, stripe_app, db,
                                                      database_url, store_key, request):
    ARTIFACTS.mkdir(exist_ok=True)
    client = stripe_app.test_client()
    load_rules(db)
    add_product(db)
    order = buy_tvs_without_plans(client, store_key, database_url, quantity=1)
    link = post_purchase.post_purchase_link(stripe_app.config["SETTINGS"], order, 1)
    context = browser.new_context(java_script_enabled=False, locale="ja-JP",
                                  extra_http_headers={"Accept-Language": "ja"})
    page = context.new_page()
    blocked = []
    page.on("console", lambda msg: blocked.append(msg.text) if "Content Security" in msg.text
            else None)
    page.goto(stripe_live + link.split("127.0.0.1:5000")[1])
    page.get_by_label("破損・故障", exact=False).first.check()
    page.screenshot(path=str(ARTIFACTS / f"post-purchase-link-{request.node.callspec.id}.png"),
                    full_page=True)
    page.get_by_role("button", name="お支払いへ進む").click()
    page.wait_for_url("**/pay/cs_*")
    page.get_by_role("button", name="支払う").click()  # Stripe's page in the page's language
    page.wait_for_url(re.compile(r".*/plans/added\?session_id=cs_\w+$"))
    assert blocked == []

    def contract():
        with Session(get_engine(database_url)) as session:
            return session.exec(select(Contract)).first()
    assert wait_for(contract).coverage == "accident"
    context.close()
