"""The `edgeface` command line: one sub-command per user task.

Each command group registers its own sub-commands; this module only assembles them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from edgeface import __version__

# The command groups import their heavy modules (cv2, the face stack) inside the handlers.
from edgeface.training_cli import register as register_training
from edgeface.web_cli import register as register_web


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgeface", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"edgeface {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    register_web(commands)
    register_training(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
