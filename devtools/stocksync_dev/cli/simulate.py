"""``stocksync simulate``: serve the Commerce Platform simulator on a port, with a few products, to poke with curl.

The same flags and control surface as ``python -m stocksync_dev.simulator`` (README, "Poking the Graph API simulator").
"""

from __future__ import annotations

import argparse
from typing import Any

from stocksync_dev.simulator.__main__ import add_arguments, serve

COMMAND = "simulate"
HELP = "serve the local Commerce Platform simulator (a Graph API double) until Ctrl-C"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(COMMAND, help=HELP, description=HELP)
    add_arguments(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    serve(args)
    return 0
