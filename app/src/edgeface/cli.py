"""The `edgeface` command line: one sub-command per user task.

Each command group lives beside the stage it drives and registers its own sub-commands,
so this module only assembles them (and imports nothing heavy until a command runs).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from edgeface import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgeface", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"edgeface {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    # Imported here so that `edgeface --help` stays fast and import errors name the command group.
    from edgeface import training_cli, web_cli

    web_cli.register(commands)
    training_cli.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
