"""The ``warranty`` command line: migrations, imports, tokens, the server, the worker."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from warranty.catalog import services as catalog
from warranty.core.errors import DomainError
from warranty.core.settings import Settings, SettingsProblem, load_settings
from warranty.customers import facts
from warranty.db.engine import migrate as run_migrations
from warranty.db.engine import session_scope
from warranty.outboxes import OUTBOXES
from warranty.pricing import rules


def settings_from_env() -> Settings:
    """Settings from the environment; when wrong, a message naming each variable (never its
    value) and exit status 1."""
    try:
        return load_settings()
    except SettingsProblem as exc:
        raise click.ClickException(str(exc)) from None


def echo_json(data: object) -> None:
    """Print a result as JSON."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


@click.group()
def main() -> None:
    """warranty: extended-warranty plans for online stores."""
    facts.install()


@main.command()
@click.option("--revision", default="head", show_default=True)
def migrate(revision: str) -> None:
    """Create or upgrade the database schema."""
    settings = settings_from_env()
    run_migrations(settings.database_url, revision)
    click.echo(f"database at {settings.database_url} is at {revision}")


@main.command("import-products")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_products(csv_file: Path) -> None:
    """Upsert products from a CSV (sku,title,category,price[,manufacturer_warranty_months])."""
    settings = settings_from_env()
    try:
        # Sorted across batches too: two imports lock shared products in one order.
        products = sorted(catalog.parse_csv(csv_file.read_text(encoding="utf-8-sig"),
                                            currency=settings.currency), key=lambda p: p.sku)
        results = []
        with session_scope(settings.database_url) as session:
            for start in range(0, len(products), catalog.MAX_BATCH):
                results.append(catalog.upsert_products(
                    session=session, products=products[start:start + catalog.MAX_BATCH],
                    currency=settings.currency))
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    unmapped = [u.model_dump() for r in results for u in r.unmapped]
    echo_json({"created": sum(r.created for r in results),
                "updated": sum(r.updated for r in results), "unmapped": unmapped})


@main.command("load-rules")
@click.argument("rule_file", required=False,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--builtin", help="a rule file shipped with warranty: default-jpy, example-usd")
@click.option("--note", default="", help="a note for the version history")
def load_rules(rule_file: Path | None, builtin: str | None, note: str) -> None:
    """Validate a pricing rule file (YAML or JSON) and store it as a new version."""
    settings = settings_from_env()
    if (rule_file is None) == (builtin is None):
        raise click.UsageError("give a RULE_FILE or --builtin NAME")
    try:
        text = rule_file.read_text(encoding="utf-8") if rule_file else rules.builtin_rules(
            builtin)
        document = rules.load_text(text)
        with session_scope(settings.database_url) as session:
            row = rules.save_rule_set(session=session, document=document,
                                        store_currency=settings.currency,
                                        created_by="cli", note=note or str(rule_file or builtin))
            version = row.version
    except DomainError as exc:
        for problem in exc.details or []:
            click.echo(f"  {problem['at']}: {problem['message']}", err=True)
        raise click.ClickException(exc.message) from None
    click.echo(f"rule set version {version} loaded")


# "staff" is the old name of "support", still accepted.
ROLE_CHOICE = click.Choice(["support", "finance", "admin", "staff"])


@main.command("create-token")
@click.argument("name")
@click.option("--role", type=ROLE_CHOICE, default="support", show_default=True,
              help="support (reads, decides claims), finance (+ refunds, payouts, reports), "
                   "admin (+ rules, catalog, tokens, staff)")
def create_token(name: str, role: str) -> None:
    """Issue a bearer token with a staff role (printed once)."""
    from warranty.auth.credentials import issue_token

    settings = settings_from_env()
    with session_scope(settings.database_url) as session:
        token = issue_token(session=session, name=name, role=role)
    click.echo(token)


@main.command("revoke-token")
@click.argument("name")
def revoke_token(name: str) -> None:
    """Revoke every live bearer token issued under NAME (they answer 401 from now on)."""
    from warranty.auth.credentials import revoke

    settings = settings_from_env()
    with session_scope(settings.database_url) as session:
        count = revoke(session=session, name=name)
    if not count:
        raise click.ClickException(f"no live token named {name}")
    click.echo(f"{count} token(s) named {name} revoked")


@main.command("create-staff")
@click.argument("email")
@click.option("--role", type=ROLE_CHOICE, default="support", show_default=True)
@click.option("--password-stdin", is_flag=True,
              help="read the password from standard input instead of prompting")
def create_staff(email: str, role: str, password_stdin: bool) -> None:
    """Add a staff account for the staff pages (password prompted, or from stdin)."""
    from warranty.staff.accounts import create_staff as add_staff

    settings = settings_from_env()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        with session_scope(settings.database_url) as session:
            user = add_staff(session=session, email=email, role=role, password=password)
            created = (user.email, user.role)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"staff account {created[0]} ({created[1]}) created")


@main.command("revoke-staff-sessions")
@click.argument("email")
def revoke_staff_sessions(email: str) -> None:
    """Sign a staff member out of every browser (their sessions stop working now)."""
    from warranty.staff.accounts import revoke_sessions

    settings = settings_from_env()
    try:
        with session_scope(settings.database_url) as session:
            user = revoke_sessions(session=session, email=email)
            address = user.email
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"every staff session of {address} revoked")


@main.command("revoke-customer-sessions")
@click.argument("email")
def revoke_customer_sessions(email: str) -> None:
    """Sign a customer out of every browser, void their API customer tokens and the sign-in
    links mailed to them until now."""
    from warranty.auth import sessions as auth_sessions

    settings = settings_from_env()
    with session_scope(settings.database_url) as session:
        count = auth_sessions.revoke_all(session=session, subject=email,
                                         kinds=("customer", "customer_api"))
        auth_sessions.void_links(session=session, email=email)
    click.echo(f"{count} customer session(s) and token(s) of {email.strip().lower()} revoked; "
               "the sign-in links mailed until now no longer work")


@main.command()
@click.option("--once", is_flag=True, help="one pass over every job, then exit")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000),
              help="rows per job per pass")
def worker(once: bool, limit: int) -> None:
    """Send mail, deliver store webhooks, retry refunds, expire ended plans."""
    import signal
    import threading

    from warranty.core.logs import configure_logging
    from warranty.payments.client import make_client
    from warranty.worker import run_forever, run_once

    settings = settings_from_env()
    stripe_client = make_client(settings)
    if once:
        echo_json(run_once(settings=settings, stripe_client=stripe_client, limit=limit))
        return
    configure_logging()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"worker running on {settings.database_url}; Ctrl-C to stop")
    run_forever(settings=settings, stripe_client=stripe_client, stop=stop, limit=limit)


@main.group(invoke_without_command=True)
@click.option("--queue", "queues", multiple=True,
              type=click.Choice(list(OUTBOXES)),
              help="only this outbox (repeatable); default: all")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(0, 10_000),
              help="rows listed per outbox")
@click.pass_context
def outbox(ctx: click.Context, queues: tuple[str, ...], limit: int) -> None:
    """What waits in each outbox, and the rows that need a person, with their errors.

    Dead mail and webhooks, failed refunds and Stripe events Stripe will never give are rows
    given up on (the metrics' dead letters count the same rows); Stripe events still failing
    are listed too. ``warranty outbox retry`` sends dead rows again.
    """
    if ctx.invoked_subcommand is not None:
        return
    from warranty import outboxes
    from warranty.db.engine import Session, get_engine

    settings = settings_from_env()
    with Session(get_engine(settings.database_url)) as session:
        echo_json(outboxes.report(session, limit=limit, queues=queues or None))


@outbox.command("retry")
@click.argument("queue", type=click.Choice([n for n, box in OUTBOXES.items() if box.requeue]))
@click.argument("ids", nargs=-1, required=True, type=int)
def outbox_retry(queue: str, ids: tuple[int, ...]) -> None:
    """Send dead rows of QUEUE again (after the cause was fixed): IDS from the listing."""
    from warranty.outboxes import requeue

    settings = settings_from_env()
    with session_scope(settings.database_url) as session:
        count = requeue(session, queue=queue, ids=ids)
    if count < len(set(ids)):
        click.echo(f"{len(set(ids)) - count} of the rows were not dead; left alone", err=True)
    click.echo(f"{count} {queue} row(s) queued again")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int,
              help="gunicorn worker processes")
@click.option("--dev", is_flag=True, help="Flask's development server instead of gunicorn")
def serve(host: str, port: int, workers: int, dev: bool) -> None:
    """Run the service (gunicorn by default)."""
    from warranty.http import dev_server
    from warranty.http.app import create_app

    settings = settings_from_env()
    if dev:
        dev_server.run(create_app(settings), host=host, port=port)
        return
    from gunicorn.app.wsgiapp import run

    sys.argv = ["gunicorn", "--bind", f"{host}:{port}", "--workers", str(workers),
                "--config", "python:warranty.gunicorn_conf", "warranty.wsgi:app"]
    run()


@main.command("import-orders")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_orders(csv_file: Path) -> None:
    """Import orders paid outside the service (order_ref,email,purchase_date,total_amount)."""
    from warranty.orders import imports as order_import

    settings = settings_from_env()
    try:
        orders = order_import.parse_csv(csv_file.read_text(encoding="utf-8-sig"))
        created = skipped = 0
        with session_scope(settings.database_url) as session:
            for start in range(0, len(orders), order_import.MAX_BATCH):
                result = order_import.import_orders(
                    session=session, orders=orders[start:start + order_import.MAX_BATCH],
                    currency=settings.currency)
                created, skipped = created + result.created, skipped + result.already_imported
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    echo_json({"created": created, "already_imported": skipped})


@main.command("rebuild-customer-facts")
def rebuild_customer_facts() -> None:
    """Recompute the retention report's per-customer facts from the orders (after writes made
    outside the service, such as SQL run by hand; the service keeps them in step itself)."""
    from warranty.db.engine import get_write_engine

    settings = settings_from_env()
    with get_write_engine(settings.database_url).begin() as conn:
        echo_json({"customers": facts.rebuild(conn)})


@main.command("rebuild-rollups")
def rebuild_rollups() -> None:
    """Recompute the reports' rollups (deferred revenue per month end, retention sums) from
    the facts. Triggers keep them in step with every write; this is for a database whose
    triggers were off (a restore without them, a bulk load with triggers disabled)."""
    from warranty.db.engine import get_write_engine
    from warranty.rollups import deferred, retention

    settings = settings_from_env()
    with get_write_engine(settings.database_url).begin() as conn:
        echo_json({"deferred_rollup": deferred.backfill(conn),
                   "retention_rollup": retention.backfill(conn)})


@main.command("close-month")
@click.argument("month")
@click.option("--by", "actor", required=True,
              help="who closes it, for the record (e.g. the finance person's email)")
@click.option("--note", default="", help="a note kept with the close")
def close_month_command(month: str, actor: str, note: str) -> None:
    """Close MONTH (YYYY-MM) and every month before it: nothing is booked in them again."""
    from warranty.closing import months as closing
    from warranty.core.dates import store_today
    from warranty.periods import booking as periods

    settings = settings_from_env()
    try:
        with session_scope(settings.database_url) as session:
            row = closing.close_month(session=session, settings=settings,
                                      month=periods.parse_month(month),
                                      today=store_today(settings.timezone),
                                      actor=f"cli:{actor}", note=note)
            figures = row.figures
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"{month} closed", err=True)
    echo_json({"month": month, "figures": figures})


@main.command("periods")
def periods_command() -> None:
    """List the closed months, the first open day and the month to close next."""
    from warranty.closing import months as closing
    from warranty.core.dates import store_today
    from warranty.db.engine import Session, get_engine

    settings = settings_from_env()
    with Session(get_engine(settings.database_url)) as session:
        echo_json(closing.state(session, store_today(settings.timezone)))


@main.command("report")
@click.argument("name")
@click.option("--from", "start", required=True, help="first day, ISO (2026-01-01)")
@click.option("--to", "end", required=True, help="last day, ISO (2026-03-31)")
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "xlsx"]), default="csv",
              show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="file to write (default: standard output; xlsx needs a file)")
def report_command(name: str, start: str, end: str, fmt: str, output: Path | None) -> None:
    """Write report NAME for a period (finance, journal, contracts, movements, orders, ...)."""
    from warranty import reports
    from warranty.db.engine import Session, get_engine
    from warranty.payments.client import make_client
    from warranty.reports import export

    settings = settings_from_env()
    if fmt == "xlsx" and output is None:
        raise click.UsageError("--format xlsx needs --output FILE")
    try:
        period = reports.parse_period(start, end)
        with Session(get_engine(settings.database_url)) as session:
            ctx = reports.Context(session=session, settings=settings, period=period,
                                  stripe_client=make_client(settings))
            result = reports.run_report(name, ctx)
            chunks = export.chunks(result, fmt)
            if output is None:
                for chunk in chunks:
                    click.echo(chunk, nl=False)
                return
            with output.open("wb") as handle:
                for chunk in chunks:
                    handle.write(chunk if isinstance(chunk, bytes) else chunk.encode())
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"{name} written to {output}", err=True)


if __name__ == "__main__":  # pragma: no cover
    main()
