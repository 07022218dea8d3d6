"""Synthetic store data for benchmarks and demos: orders, plans, cancellations, refunds.

``python -m devtools.cli synth --orders 1000000 --plans 200000`` fills an empty (migrated)
database with a store's history: customers who come back (plan holders more often), orders over
the period, one plan per plan order, contracts, cancellations with refunds by the brief's rule,
and, when those tables exist, claims with payouts and NPS answers, and visitor traffic with the
holdout arm. Rows go in through the driver in bulk: COPY on PostgreSQL, executemany on SQLite;
nothing passes through the ORM, so the retention report's per-customer facts are rebuilt from
scratch at the end (``warranty.customers.facts.rebuild``), in the same transaction.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from warranty.core.money import pro_rata, round_up
from warranty.core.tax import TaxPolicy, default_rate
from warranty.coverage.dates import coverage_dates
from warranty.coverage.span import plan_span, span_days_unused
from warranty.customers import facts
from warranty.experiment.events import PLACEMENTS
from warranty.pricing import rules, terms
from warranty.rollups import deferred as deferred_rollup
from warranty.rollups import retention as retention_rollup

BATCH = 20_000
SYNTH_ZONE = ZoneInfo("Asia/Tokyo")  # the synthetic store's time zone (payout dates)
# The default rule set's warranty categories, in a fixed order (the generator draws from it).
CATEGORIES = ["electronics", "appliances", "computers", "phones", "audio", "furniture",
              "outdoor", "eyewear", "car_accessories", "bicycles", "sports",
              "musical_instruments", "jewelry"]


def _sqlite_value(value):
    """What the application stores on SQLite for a Python value."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


def bulk_insert(conn: sa.Connection, table: str, columns: list[str],
                rows: Iterable[tuple]) -> int:
    """Insert tuples in bulk: COPY on PostgreSQL, executemany in batches on SQLite."""
    count = 0
    raw = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        with raw.cursor() as cur, cur.copy(
                f'COPY "{table}" ({", ".join(columns)}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row([json.dumps(v) if isinstance(v, list | dict) else v
                                for v in row])
                count += 1
        return count
    sql = (f'INSERT INTO "{table}" ({", ".join(columns)}) '
           f'VALUES ({", ".join("?" for _ in columns)})')
    cur = raw.cursor()
    # A big page cache keeps the indexes' B-trees in memory while millions of rows go in.
    cur.execute("PRAGMA cache_size=-400000")
    batch: list[tuple] = []
    for row in rows:
        batch.append(tuple(_sqlite_value(v) for v in row))
        if len(batch) >= BATCH:
            cur.executemany(sql, batch)
            count += len(batch)
            batch.clear()
    if batch:
        cur.executemany(sql, batch)
        count += len(batch)
    cur.close()
    return count


# A JPY store's default tax setting: 10% included in the prices, rounded down.
TAX = TaxPolicy(rate=default_rate("jpy"), currency="jpy")


class Store:
    """The generated history, kept as compact tuples until written."""

    def __init__(self, *, orders: int, plans: int, start: date, days: int, seed: int,
                 rule_version: int, first_id: dict[str, int], external_share: float = 0.1,
                 holdout_lost_share: float | None = None):
        self.rng = random.Random(seed)
        # The demo's history (``holdout_lost_share`` set): visitors in the holdout are never
        # offered a plan, so their orders carry none, and that share of the holdout's new
        # customers do not buy at all (they stay visitors who browsed): the lift the
        # conversion report then measures. Claims and NPS answers end by the last day.
        # Unset (benchmarks), plans fall on orders whatever the arm, as before.
        self.holdout_lost_share = holdout_lost_share
        # Shares of contracts with a claim, and of closed claims with an NPS answer (the
        # demo's history has more of both, so its NPS chart has answers in every outcome).
        self.claim_share, self.nps_share = (0.06, 0.33) if holdout_lost_share is None \
            else (0.2, 0.6)
        self.lost_visitors: list[tuple[str, date]] = []
        self.n_orders, self.n_plans = orders, plans
        self.start, self.days = start, days
        self.today = start + timedelta(days=days - 1)
        self.rule_version = rule_version
        self.terms_version = terms.label(rule_version, terms.Conditions(currency="jpy"))
        self.first_id = first_id
        self.external_share = external_share
        self.plan_orders: list[tuple] = []  # (order id, date, email, category, price, ...)

    def _dates(self) -> Iterator[date]:
        """Order dates in order, growing over the period (a store that grows)."""
        rng, n = self.rng, self.n_orders
        for i in range(n):
            # Square-root spacing: later days have more orders than early ones.
            offset = int(self.days * ((i + rng.random()) / n) ** 0.8)
            yield self.start + timedelta(days=min(offset, self.days - 1))

    def orders(self) -> Iterator[tuple]:
        """Order rows; decides which orders carry a plan, remembering those for lines."""
        rng = self.rng
        plans_left, orders_left = self.n_plans, self.n_orders
        with_plan: list[int] = []
        without: list[int] = []
        next_customer = 0
        oid = self.first_id["orders"]
        held_out = _holdout_test() if self.holdout_lost_share is not None else None
        for day in self._dates():
            # Selection sampling: exactly n_plans of the orders carry a plan (the demo's
            # history: fewer, as the holdout's orders carry none).
            has_plan = rng.random() * orders_left < plans_left
            orders_left -= 1
            # About 45% of orders come from returning customers; plan holders come back
            # more often (the relationship the plan is meant to build).
            returning = bool(with_plan or without) and rng.random() < 0.45
            if returning:
                pool = with_plan if with_plan and (not without or rng.random() < 0.35) \
                    else without
                customer = pool[rng.randrange(len(pool))]
            else:
                customer = next_customer + 1
            if held_out is not None and held_out(f"v{customer}"):
                if not returning and rng.random() < self.holdout_lost_share:
                    # A new visitor in the holdout who leaves without buying.
                    next_customer += 1
                    self.lost_visitors.append((f"v{customer}", day))
                    continue
                has_plan = False  # the holdout is never offered a plan
            plans_left -= has_plan
            oid += 1
            if not returning:
                next_customer += 1
                (with_plan if has_plan else without).append(customer)
            email = f"c{customer}@example.com"
            category = CATEGORIES[rng.randrange(len(CATEGORIES))]
            product_price = round_up(int(rng.lognormvariate(10.3, 0.8)), 10)
            external = not has_plan and rng.random() < self.external_share
            paid_at = datetime(day.year, day.month, day.day, 3, rng.randrange(60), tzinfo=UTC)
            plan_price = round_up(pro_rata(product_price, 8, 100), 10) if has_plan else 0
            total = product_price + plan_price
            visitor = None if external else f"v{customer}"
            if has_plan:
                self.plan_orders.append((oid, day, email, category, product_price, plan_price))
            yield (oid, f"ord_s{oid}", f"S-{oid}", email, "jpy", total,
                   "external" if external else "payment_intent", "paid", day, visitor,
                   None if external else f"pi_synth_{oid}",
                   None if external else f"ch_synth_{oid}", paid_at, paid_at, paid_at, day)

    ORDER_COLUMNS = ["id", "public_id", "store_order_ref", "customer_email", "currency",
                     "total_amount", "channel", "status", "purchase_date", "visitor_id",
                     "stripe_payment_intent_id", "stripe_charge_id", "created_at", "paid_at",
                     "updated_at", "booked_on"]

    def lines(self, order_rows: Iterable[tuple[int, int]]) -> Iterator[tuple]:
        """A product line per order, given as (id, total), and a plan line after it for
        plan orders."""
        plans = {p[0]: p for p in self.plan_orders}
        lid = self.first_id["order_line"]
        self.plan_lines: dict[int, tuple[int, int]] = {}
        rng = self.rng
        for oid, total in order_rows:
            plan = plans.get(oid)
            lid += 1
            product_price = plan[4] if plan else total
            # Every product line carries its category (the attach report groups by it).
            category = plan[3] if plan else CATEGORIES[oid % len(CATEGORIES)]
            yield (lid, oid, 1, "product", f"SKU-{oid % 5000}", "Product", 1, product_price,
                   product_price, product_price, 0, product_price, 12, category, None, None,
                   None, None, 0)
            if plan:
                lid += 1
                self.plan_lines[oid] = (lid - 1, lid)
                tax = TAX.tax_of(plan[5])
                yield (lid, oid, 2, "plan", f"SKU-{oid % 5000}", "standard-36", 1, plan[5],
                       plan[5], plan[5], tax, plan[5] - tax, None, category, "standard-36",
                       self.rule_version, lid - 1,
                       PLACEMENTS[rng.randrange(len(PLACEMENTS))], 0)

    LINE_COLUMNS = ["id", "order_id", "line_no", "kind", "sku", "title", "quantity",
                    "unit_price", "amount", "gross", "tax", "net",
                    "manufacturer_warranty_months", "warranty_category",
                    "plan_code", "rule_set_version", "covers_line_id", "placement",
                    "refunded_quantity"]

    def contracts(self) -> Iterator[tuple]:
        """One contract per plan order; some are cancelled (see :meth:`refunds`)."""
        rng = self.rng
        cid = self.first_id["contract"]
        self.cancelled: list[tuple] = []
        self.contract_rows: list[tuple] = []
        for oid, day, email, category, product_price, plan_price in self.plan_orders:
            cid += 1
            term = rng.choice((12, 24, 36, 36, 60))
            coverage = "accident" if rng.random() < 0.3 else "standard"
            dates = coverage_dates(purchase_date=day, term_months=term, manufacturer_months=12,
                                   coverage=coverage)
            status = "active" if dates.term_end >= self.today else "expired"
            roll = rng.random()
            if roll < 0.08:
                # 40% of cancellations come in the 30-day free look (full refund).
                if rng.random() < 0.4:
                    cancel = day + timedelta(days=rng.randrange(31))
                    refund = plan_price
                else:
                    cancel = day + timedelta(days=rng.randrange(31, (dates.term_end - day).days))
                    # Sold with the product: the span is the whole term (the refund rule).
                    unused = span_days_unused(day, dates.term_end, cancel)
                    refund = pro_rata(plan_price, unused, plan_span(day, dates.term_end))
                if cancel <= self.today:
                    status = "cancelled"
                    self.cancelled.append((cid, oid, refund, cancel, plan_price))
            product_line, plan_line = self.plan_lines[oid]
            self.contract_rows.append((cid, day, dates.term_end, product_price, coverage,
                                       email))
            paid_at = datetime(day.year, day.month, day.day, 3, tzinfo=UTC)
            yield (cid, f"ct_s{cid}", oid, plan_line, product_line, 0, email, f"SKU-{oid % 5000}",
                   "Product", product_price, category, f"{coverage}-{term}", coverage, term,
                   plan_price, TAX.tax_of(plan_price), "jpy", self.rule_version,
                   self.terms_version, 0,
                   [100, 100, 80, 70, 60], day, day,
                   dates.term_end, dates.breakdown_start, dates.accident_start, None, status,
                   paid_at, paid_at, day)

    CONTRACT_COLUMNS = ["id", "public_id", "order_id", "plan_line_id", "product_line_id",
                        "unit_index", "customer_email", "sku", "product_title", "product_price",
                        "warranty_category", "plan_code", "coverage", "term_months", "price",
                        "tax", "currency", "rule_set_version", "terms_version", "deductible",
                        "liability_schedule",
                        "purchase_date", "plan_sold_on", "term_end", "breakdown_start",
                        "accident_start", "waiting_until", "status", "created_at",
                        "updated_at", "booked_on"]

    def refunds(self) -> Iterator[tuple]:
        """A succeeded refund per cancelled contract."""
        rid = self.first_id["refund"]
        for cid, oid, amount, cancel, price in self.cancelled:
            rid += 1
            tax = TAX.tax_of(price)
            refund_tax = TAX.refund_tax(line_tax=tax, line_gross=price, refund=amount, left=tax)
            at = datetime(cancel.year, cancel.month, cancel.day, 5, tzinfo=UTC)
            yield (rid, cid, oid, "plan", amount, refund_tax, "jpy", cancel, 0, 0, "synthetic",
                   "succeeded", f"synth-refund-{cid}", f"re_synth_{cid}", "succeeded", 1, at,
                   at, cancel)

    REFUND_COLUMNS = ["id", "contract_id", "order_id", "kind", "amount", "tax", "currency",
                      "cancel_date", "fee", "claims_paid", "reason", "status", "idempotency_key",
                      "stripe_refund_id", "stripe_status", "attempts", "created_at",
                      "completed_at", "booked_on"]


def _holdout_test():
    """Whether a visitor id is in the holdout, as the service assigns it by default."""
    from warranty.core.settings import Settings
    from warranty.experiment.arms import HOLDOUT, assign_arm

    defaults = Settings.model_fields
    salt, share = defaults["experiment_salt"].default, defaults["holdout_share"].default
    return lambda visitor: assign_arm(visitor, salt=salt, share=share) == HOLDOUT


def _max_ids(conn: sa.Connection, tables: list[str]) -> dict[str, int]:
    """Current highest id per table (new rows continue after them)."""
    return {t: conn.exec_driver_sql(f'SELECT COALESCE(MAX(id), 0) FROM "{t}"').scalar()
            for t in tables}


def _reset_sequences(conn: sa.Connection, tables: list[str]) -> None:
    """PostgreSQL: move each id sequence past the ids written explicitly."""
    if conn.dialect.name != "postgresql":
        return
    for table in tables:
        conn.exec_driver_sql(
            f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
            f"(SELECT COALESCE(MAX(id), 1) FROM \"{table}\"))")


def generate(url: str, *, orders: int, plans: int, start: date, days: int, seed: int = 1,
             log=print, holdout_lost_share: float | None = None) -> dict:
    """Fill the database at ``url``; returns row counts and seconds per step.

    ``holdout_lost_share`` makes the demo's history (see :class:`Store`): the holdout buys no
    plans and converts less, and nothing happens after the last day."""
    from warranty.db.engine import Session, get_write_engine

    if plans > orders:
        raise ValueError("--plans cannot exceed --orders (one plan per plan order)")
    engine = get_write_engine(url)
    with Session(engine) as session:
        version = rules.latest_version(session)
        if version is None:
            version = rules.save_rule_set(
                session=session, document=rules.load_text(rules.builtin_rules(
                    "default-jpy")), store_currency="jpy", created_by="synth").version
            session.commit()
        terms.record(session, version, terms.Conditions(currency="jpy"))
        session.commit()
    tables = ["orders", "order_line", "contract", "refund"]
    figures: dict = {"orders": orders, "plans": plans, "backend": engine.dialect.name}
    started = time.perf_counter()
    with engine.begin() as conn:
        store = Store(orders=orders, plans=plans, start=start, days=days, seed=seed,
                      rule_version=version, first_id=_max_ids(conn, tables),
                      holdout_lost_share=holdout_lost_share)
        order_rows: list[tuple] = []

        def keep(rows):
            for row in rows:
                order_rows.append((row[0], row[5]))  # id, total
                yield row

        step = time.perf_counter()
        figures["rows_orders"] = bulk_insert(conn, "orders", Store.ORDER_COLUMNS,
                                             keep(store.orders()))
        figures["seconds_orders"] = round(time.perf_counter() - step, 1)
        log(f"orders: {figures['rows_orders']} in {figures['seconds_orders']} s")
        step = time.perf_counter()
        figures["rows_order_lines"] = bulk_insert(conn, "order_line", Store.LINE_COLUMNS,
                                                  store.lines(order_rows))
        order_rows.clear()
        figures["seconds_order_lines"] = round(time.perf_counter() - step, 1)
        log(f"order lines: {figures['rows_order_lines']} in {figures['seconds_order_lines']} s")
        step = time.perf_counter()
        figures["rows_contracts"] = bulk_insert(conn, "contract", Store.CONTRACT_COLUMNS,
                                                store.contracts())
        figures["rows_refunds"] = bulk_insert(conn, "refund", Store.REFUND_COLUMNS,
                                              store.refunds())
        figures["seconds_contracts_refunds"] = round(time.perf_counter() - step, 1)
        log(f"contracts: {figures['rows_contracts']}, refunds: {figures['rows_refunds']} "
            f"in {figures['seconds_contracts_refunds']} s")
        for extra in EXTRAS:
            figures.update(extra(conn, store, log) or {})
        _reset_sequences(conn, tables)
        step = time.perf_counter()
        figures["rows_customer_facts"] = facts.rebuild(conn)
        log(f"customer facts: {figures['rows_customer_facts']} "
            f"in {time.perf_counter() - step:.1f} s")
        # The rollups' triggers wrote rows as the facts went in (per contract and month, per
        # customer):
        # fold them (warranty.rollups.deferred), as the worker does after any write.
        step = time.perf_counter()
        figures["rollup_rows_folded"] = (deferred_rollup.compact(conn)
                                         + retention_rollup.compact(conn))
        log(f"rollups: {figures['rollup_rows_folded']} rows folded "
            f"in {time.perf_counter() - step:.1f} s")
    if engine.dialect.name == "postgresql":
        # After a bulk load: statistics for the planner, and the visibility map set so that
        # index-only scans (the reports') need not visit the tables.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    figures["seconds_total"] = round(time.perf_counter() - started, 1)
    return figures


CLAIM_COLUMNS = ["id", "public_id", "contract_id", "customer_email", "incident_date",
                 "failure_type", "description", "estimated_amount", "coverage_year", "status",
                 "decision", "approved_amount", "deny_code", "deny_reason", "lang", "source",
                 "created_at", "updated_at", "closed_at"]
PAYOUT_COLUMNS = ["id", "claim_id", "contract_id", "amount", "currency", "method", "reference",
                  "actor", "created_at", "booked_on"]
NPS_COLUMNS = ["id", "claim_id", "score", "comment", "created_at"]
EVENT_COLUMNS = ["visitor_id", "arm", "type", "placement", "warranty_category", "occurred_at",
                 "received_at"]


def claims_extra(conn: sa.Connection, store: Store, log) -> dict:
    """About 6% of contracts (``store.claim_share``) get a claim: most paid (under the cap),
    some denied, some open;
    a third of closed claims get an NPS answer, happier when paid."""
    rng = random.Random(store.rng.random())
    ids = _max_ids(conn, ["claim", "payout", "nps_answer"])
    claims, payouts, answers = [], [], []
    for cid, day, term_end, product_price, coverage, email in store.contract_rows:
        if rng.random() >= store.claim_share:
            continue
        span = (min(term_end, store.today) - day).days
        if span < 1:
            continue
        incident = day + timedelta(days=rng.randrange(1, span + 1))
        filed = datetime(incident.year, incident.month, incident.day, 4, tzinfo=UTC) \
            + timedelta(days=rng.randrange(1, 10))
        closed = filed + timedelta(days=rng.randrange(2, 20))
        if store.holdout_lost_share is not None and filed.date() > store.today:
            continue  # the demo's history: nothing filed after its last day
        ids["claim"] += 1
        claim_id = ids["claim"]
        failure = "accident" if coverage == "accident" and rng.random() < 0.6 else "breakdown"
        roll = rng.random()
        status, decision, approved, deny = "in_review", None, None, None
        if roll < 0.6:
            status, decision = "paid", rng.choice(("repair", "repair", "reimburse", "replace"))
            approved = round_up(pro_rata(product_price, rng.randrange(10, 60), 100), 10)
        elif roll < 0.85:
            status, deny = "denied", rng.choice(("manufacturer_warranty", "not_covered"))
        elif roll < 0.9:
            status, decision = "closed", "repair"
        if store.holdout_lost_share is not None and \
                (closed + timedelta(days=1)).date() > store.today:
            status, decision, approved, deny = "in_review", None, None, None  # still open
        done = closed if status != "in_review" else None
        claims.append((claim_id, f"cl_s{claim_id}", cid, email, incident, failure,
                       "synthetic claim", approved, 1 + (incident - day).days // 365, status,
                       decision, approved, deny, "denied" if deny else None, "ja", "web",
                       filed, done or filed, done))
        if status == "paid":
            ids["payout"] += 1
            payouts.append((ids["payout"], claim_id, cid, approved, "jpy",
                            "replacement" if decision == "replace" else "bank_transfer",
                            f"PO-{claim_id}", "synth", closed,
                            closed.astimezone(SYNTH_ZONE).date()))
        if done and rng.random() < store.nps_share:
            ids["nps_answer"] += 1
            score = min(10, max(0, round(rng.gauss(8.6 if status == "paid" else 4.5, 1.5))))
            answers.append((ids["nps_answer"], claim_id, score, "", closed + timedelta(days=1)))
    figures = {"rows_claims": bulk_insert(conn, "claim", CLAIM_COLUMNS, claims),
               "rows_payouts": bulk_insert(conn, "payout", PAYOUT_COLUMNS, payouts),
               "rows_nps": bulk_insert(conn, "nps_answer", NPS_COLUMNS, answers)}
    _reset_sequences(conn, ["claim", "payout", "nps_answer"])
    log(f"claims: {figures['rows_claims']}, payouts: {figures['rows_payouts']}, "
        f"NPS answers: {figures['rows_nps']}")
    return figures


def visitors_extra(conn: sa.Connection, store: Store, log, browsers_per_buyer: int = 3) -> dict:
    """Embed traffic: every buyer's visitor id plus ``browsers_per_buyer`` visitors who don't
    buy, each with an exposure event (and offer views in the treatment arm). Arms come from the
    server's own hash, so the conversion report sees them as the embed would have."""
    from warranty.core.settings import Settings
    from warranty.experiment.arms import TREATMENT, assign_arm

    defaults = Settings.model_fields
    salt, share = defaults["experiment_salt"].default, defaults["holdout_share"].default
    rng = random.Random(store.rng.random())
    buyers = conn.exec_driver_sql(
        "SELECT visitor_id, MIN(purchase_date) FROM orders WHERE visitor_id IS NOT NULL "
        "GROUP BY visitor_id").all()

    def events():
        for index, (visitor, first) in enumerate(
                [*buyers, *store.lost_visitors,
                 *((f"n{i}", None) for i in range(len(buyers) * browsers_per_buyer))]):
            if first is None:
                first = store.start + timedelta(days=rng.randrange(store.days))
            elif isinstance(first, str):
                first = date.fromisoformat(first)
            at = datetime(first.year, first.month, first.day, 2, index % 60, tzinfo=UTC)
            arm = assign_arm(visitor, salt=salt, share=share)
            category = CATEGORIES[index % len(CATEGORIES)]
            yield (visitor, arm, "exposure", None, category, at, at)
            if arm == TREATMENT:
                yield (visitor, arm, "offer_viewed", PLACEMENTS[index % len(PLACEMENTS)],
                       category, at, at)

    rows = bulk_insert(conn, "visitor_event", EVENT_COLUMNS, events())
    log(f"visitor events: {rows}")
    return {"rows_visitor_events": rows}


# Generators for the tables other parts of the service add: each takes (connection, store,
# log) and returns figures to report.
EXTRAS: list = [claims_extra, visitors_extra]
