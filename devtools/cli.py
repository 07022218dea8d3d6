"""Development commands: ``python -m devtools.cli`` is the ``warranty`` command line plus
``demo-data`` (the demo rules and catalog) and ``synth`` (a synthetic store's history for
benchmarks). They live here, outside the runtime package, with the data they generate.
"""

from __future__ import annotations

import click

from warranty.cli import echo_json, settings_from_env
from warranty.cli import main as warranty_main
from warranty.db.engine import session_scope


@click.group(commands=dict(warranty_main.commands))
def main() -> None:
    """warranty's command line, with the development commands."""
    warranty_main.callback()


@main.command("demo-data")
def demo_data() -> None:
    """Load the default JPY rules and the demo catalog."""
    from devtools.demo_data import load_demo

    settings = settings_from_env()
    with session_scope(settings.database_url) as session:
        echo_json(load_demo(session=session, currency=settings.currency))


@main.command("synth")
@click.option("--orders", default=1_000_000, show_default=True, type=click.IntRange(1))
@click.option("--plans", default=200_000, show_default=True, type=click.IntRange(0))
@click.option("--start", default="2023-01-01", show_default=True, help="first order date")
@click.option("--days", default=3 * 365, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=1, show_default=True, type=int)
def synth(orders: int, plans: int, start: str, days: int, seed: int) -> None:
    """Fill the database with a synthetic store's history (bulk inserts; for benchmarks)."""
    from datetime import date

    from devtools import synth as synthetic

    settings = settings_from_env()
    try:
        first = date.fromisoformat(start)
    except ValueError:
        raise click.BadParameter("--start must be an ISO date such as 2023-01-01") from None
    try:
        figures = synthetic.generate(settings.database_url, orders=orders, plans=plans,
                                     start=first, days=days, seed=seed,
                                     log=lambda text: click.echo(text, err=True))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    echo_json(figures)


if __name__ == "__main__":
    main()
