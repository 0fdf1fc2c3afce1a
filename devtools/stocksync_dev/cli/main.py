"""``stocksync``: the command-line tool (replay, reconcile, simulate, ...)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from stocksync import __version__
from stocksync_dev.cli import audit, discontinue, explain, reconcile, redrive, replay, simulate, status, tune


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="stocksync", description="Keeps a Facebook/Instagram Shop catalog's stock accurate."
    )
    root.add_argument("--version", action="version", version=f"stocksync {__version__}")
    commands = root.add_subparsers(dest="command", metavar="COMMAND")
    for module in (replay, reconcile, discontinue, audit, redrive, status, explain, simulate, tune):
        module.add_parser(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    if not getattr(arguments, "run", None):
        parser().print_help(sys.stderr)
        return 2
    return int(arguments.run(arguments))


if __name__ == "__main__":
    raise SystemExit(main())
