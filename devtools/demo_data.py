"""Demo data: the default JPY rules, a small catalog a newcomer can buy from, and a year of
history so that every report and chart has something to show on first start."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from warranty.catalog import services as catalog
from warranty.orders.models import Order
from warranty.pricing import rules

# sku, title, store category, price (yen), manufacturer's warranty months
DEMO_PRODUCTS = [
    ("TV-55-OLED", "4K有機ELテレビ 55型 / 55\" 4K OLED TV", "tv", 198000, 12),
    ("TV-32-LED", "液晶テレビ 32型 / 32\" LED TV", "tv", 39800, 12),
    ("FRIDGE-450", "冷蔵庫 450L / Refrigerator 450 L", "kitchen", 148000, 12),
    ("WASHER-D12", "ドラム式洗濯乾燥機 / Washer-dryer", "home_appliances", 228000, 12),
    ("LAPTOP-14", "ノートPC 14インチ / 14\" laptop", "laptop", 129800, 12),
    ("PHONE-X", "スマートフォン X / Smartphone X", "smartphone", 98000, 12),
    ("HEADPHONES-NC", "ノイズキャンセリングヘッドホン / ANC headphones", "headphones", 39600, 12),
    ("SOFA-3P", "3人掛けソファ / Three-seat sofa", "sofa", 89000, 12),
    ("EBIKE-CITY", "電動アシスト自転車 / City e-bike", "bike", 138000, 24),
    ("GUITAR-AC", "アコースティックギター / Acoustic guitar", "guitar", 54000, 12),
    ("GLASSES-TI", "チタンフレーム眼鏡 / Titanium glasses", "glasses", 32000, 12),
    ("CABLE-USB", "USBケーブル / USB cable", "cables", 1980, 12),
]


def load_demo(*, session: Session, currency: str) -> dict:
    """Load the default rules (if none) and the demo catalog; returns what was done."""
    version = rules.latest_version(session)
    if version is None:
        document = rules.load_text(rules.builtin_rules("default-jpy"))
        version = rules.save_rule_set(session=session, document=document,
                                        store_currency=currency, created_by="demo",
                                        note="default JPY rules").version
    products = [catalog.ProductIn(sku=sku, title=title, category=cat, price=price,
                                  manufacturer_warranty_months=months)
                for sku, title, cat, price, months in DEMO_PRODUCTS]
    result = catalog.upsert_products(session=session, products=products, currency=currency)
    return {"rule_set_version": version, "products": len(products),
            "unmapped": [u.sku for u in result.unmapped]}


# The demo's history: a small synthetic store (devtools.synth) of a few thousand orders over
# two years (so that LTV and the 365-day repeat rate, which need customers observed for a
# year, have figures for the year before last), with plans, cancellations, claims, NPS
# answers and visitor traffic in both arms.
HISTORY_ORDERS = 6000
HISTORY_PLANS = 1500
HISTORY_DAYS = 730
# Of the holdout's new visitors, this share leaves without buying (they were shown no plan):
# the uplift the conversion report measures on the demo's history.
HISTORY_HOLDOUT_LOST = 0.15


def load_history(database_url: str, *, today: date, log=print) -> dict | None:
    """Fill an empty store with two years of history up to ``today`` (first start only: nothing
    happens once any order exists); returns the generator's figures, or None."""
    from devtools import synth
    from warranty.db.engine import get_engine

    with get_engine(database_url).connect() as conn:
        if conn.execute(sa.select(sa.func.count()).select_from(Order.__table__)).scalar():
            return None
    return synth.generate(database_url, orders=HISTORY_ORDERS, plans=HISTORY_PLANS,
                          start=today - timedelta(days=HISTORY_DAYS - 1), days=HISTORY_DAYS,
                          seed=2026, log=log, holdout_lost_share=HISTORY_HOLDOUT_LOST)
