"""`ose`: generate demo data, run the pipeline, open the UIs, serve the API, explain a scoring run.

Each command lives in the module of its subject and registers itself through `register(add_command)`.
"""

from __future__ import annotations

import argparse
import sys

from ose_assets.cli import bench, inspect, pipeline, ranking, servers, track_record

MODULES = (pipeline, servers, inspect, ranking, track_record, bench)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="ose", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def add_command(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--data-dir", help="data root (default: $OSE_DATA_DIR or ./data)")
        sub.set_defaults(handler=handler)
        return sub

    for module in MODULES:
        module.register(add_command)
    args = parser.parse_args(argv)
    # A handler returns False (or exits) when its work failed.
    if args.handler(args) is False:
        sys.exit(1)


if __name__ == "__main__":
    main()
