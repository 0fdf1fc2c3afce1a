"""``python -m stocksync_dev.simulator``: serve the simulator with a few products, to poke at it with curl.

Prints the URL, access token and appsecret_proof to use, plus a few example commands, then serves until Ctrl-C.
Started this way the simulator plays today's Graph: the order API is removed from 2026-10-27 on the simulated clock
(``--order-api-removed-on never`` keeps it), and it serves the control surface ``/__simulator/...`` (control.py)
to move the clock and set the removal date, throttles, faults and batch timing while it runs.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Sequence
from datetime import date, datetime, timedelta

from stocksync_dev.simulator.auth import appsecret_proof
from stocksync_dev.simulator.commerce_platform import CommercePlatformSimulator
from stocksync_dev.simulator.control import CONTROL_PREFIX, NEVER
from stocksync_dev.simulator.order_api_removal import REMOVAL_DATE, REMOVAL_SHAPES, V26_BLOCK_DATE

GRAPH_VERSION = "v25.0"


def seed(sim: CommercePlatformSimulator) -> None:
    """A small shop: a fast seller, a nearly sold-out one, a staged one, and orders waiting to be handled."""
    sim.add_product("MUG-RED", quantity=12, name="Red mug", price="9.99 USD")
    sim.add_product("MUG-BLUE", quantity=2, name="Blue mug", price="9.99 USD")
    sim.add_product("TEAPOT", quantity=0, visibility="staging", name="Teapot", price="29.00 USD")
    sim.place_order("order-1", [("MUG-RED", 2)], state="CREATED")
    sim.place_order("order-2", [("MUG-RED", 1), ("MUG-BLUE", 1)])


def instructions(sim: CommercePlatformSimulator, access_token: str, proof: str) -> str:
    auth = f"access_token={access_token}&appsecret_proof={proof}"
    base = f"{sim.url}/{GRAPH_VERSION}"
    order_fields = "id,order_status,items{retailer_id,quantity}"
    product_fields = "retailer_id,quantity_to_sell_on_facebook,visibility"
    upload = '[{"method":"UPDATE","data":{"id":"MUG-RED","quantity_to_sell_on_facebook":5}}]'
    return "\n".join(
        [
            f"Commerce Platform simulator listening on {sim.url}",
            f"access_token:    {access_token}",
            f"appsecret_proof: {proof}",
            "Try:",
            f"  curl -g '{base}/{sim.cms_id}/commerce_orders?state=FB_PROCESSING,CREATED&fields={order_fields}&{auth}'",
            f"  curl '{base}/{sim.catalog_id}/products?fields={product_fields}&{auth}'",
            f"  curl '{base}/{sim.catalog_id}/items_batch' -d item_type=PRODUCT_ITEM -d '{auth}' "
            f"--data-urlencode 'requests={upload}'",
            f"  curl '{base}/{sim.catalog_id}/check_batch_request_status?handle=HANDLE&{auth}'",
            f"Control surface (this simulator only, never Graph): curl {sim.url}{CONTROL_PREFIX}",
            f"  curl {sim.url}{CONTROL_PREFIX}/clock -d advance_seconds=3600",
            f"  curl {sim.url}{CONTROL_PREFIX}/order_api -d removed_on=never -d shape=unknown_path",
            f"  curl {sim.url}{CONTROL_PREFIX}/throttle -d after_calls=0 -d code=80014 -d regain_minutes=5 "
            "-d endpoint=items_batch",
            "Ctrl-C stops it.",
        ]
    )


def _day(value: str) -> date | None:
    return None if value.lower() == NEVER else date.fromisoformat(value)


def _moment(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a UTC offset, e.g. {value}+00:00")
    return moment


def _fraction(value: str) -> float | None:
    return None if value.lower() == "random" else float(value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The standalone simulator's flags (shared with ``stocksync simulate``)."""
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--access-token", default="sim-token")
    parser.add_argument("--app-secret", default="sim-app-secret")
    parser.add_argument("--log-requests", action="store_true", help="print one line per request on stderr")
    parser.add_argument(
        "--start", type=_moment, help="the simulated clock's start, ISO-8601 with offset (default: now)"
    )
    parser.add_argument(
        "--order-api-removed-on",
        type=_day,
        default=REMOVAL_DATE,
        metavar="DATE|never",
        help=f"simulated day the order API leaves every version (default {REMOVAL_DATE}, Meta's)",
    )
    parser.add_argument(
        "--order-api-blocked-from-v26-on",
        type=_day,
        default=V26_BLOCK_DATE,
        metavar="DATE|never",
        help=f"simulated day v26.0+ stops serving the order API (default {V26_BLOCK_DATE}, Meta's)",
    )
    parser.add_argument(
        "--removal-shape", choices=REMOVAL_SHAPES, default="deprecated", help="how a removed order endpoint answers"
    )
    parser.add_argument("--batch-processing-seconds", type=float, default=0.0, help="items_batch upload to finished")
    parser.add_argument(
        "--batch-apply-fraction",
        type=_fraction,
        default=0.5,
        metavar="FRACTION|random",
        help="where in its processing a batch overwrites the catalog",
    )
    parser.add_argument(
        "--no-control", action="store_true", help=f"do not serve the control surface {CONTROL_PREFIX}/..."
    )


def build(args: argparse.Namespace) -> CommercePlatformSimulator:
    """The simulator the flags describe, seeded, not started."""
    sim = CommercePlatformSimulator(
        access_token=args.access_token,
        app_secret=args.app_secret,
        log_requests=args.log_requests,
        start=args.start,
        order_api_removed_on=args.order_api_removed_on,
        batch_processing_delay=timedelta(seconds=args.batch_processing_seconds),
        batch_apply_fraction=args.batch_apply_fraction,
        control_surface=not args.no_control,
    )
    sim.order_api_blocked_from_v26_on = args.order_api_blocked_from_v26_on
    sim.order_api_removal_shape = args.removal_shape
    seed(sim)
    return sim


def serve(args: argparse.Namespace) -> None:
    sim = build(args)
    sim.start(port=args.port)
    print(instructions(sim, args.access_token, appsecret_proof(args.access_token, args.app_secret)), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stocksync_dev.simulator", description=__doc__)
    add_arguments(parser)
    serve(parser.parse_args(argv))


if __name__ == "__main__":
    main()
