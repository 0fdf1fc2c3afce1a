"""``stocksync simulate``: serve the Commerce Platform simulator on a port, with a few products, to poke with curl."""

from __future__ import annotations

import argparse
from typing import Any

from stocksync.simulator.__main__ import main as serve

COMMAND = "simulate"
HELP = "serve the local Commerce Platform simulator (a Graph API double) until Ctrl-C"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(COMMAND, help=HELP, description=HELP)
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--access-token", default="sim-token")
    parser.add_argument("--app-secret", default="sim-app-secret")
    parser.add_argument("--log-requests", action="store_true", help="print one line per request on stderr")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    argv = ["--port", str(args.port), "--access-token", args.access_token, "--app-secret", args.app_secret]
    serve([*argv, "--log-requests"] if args.log_requests else argv)
    return 0
