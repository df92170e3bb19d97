"""`ose explain-run`: where a scoring run came from."""

from __future__ import annotations

import argparse
import datetime as dt

from ose_assets.cli.common import settings_for


def explain_run(args: argparse.Namespace) -> None:
    settings = settings_for(args)
    from ose_assets.monitoring.lineage import explain_run as explain

    print(explain(settings, dt.date.fromisoformat(args.as_of) if args.as_of else None))


def register(add_command) -> None:
    add_command("explain-run", explain_run, "print the lineage of a scoring run").add_argument(
        "--as-of", help="the scoring run of this as-of date (default: the latest)"
    )
