"""``python -m stocksync.simulator``: serve the simulator with a few products, to poke at it with curl.

Prints the URL, access token and appsecret_proof to use, plus a few example commands, then serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Sequence

from stocksync.simulator.auth import appsecret_proof
from stocksync.simulator.commerce_platform import CommercePlatformSimulator

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
            "Ctrl-C stops it.",
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stocksync.simulator", description=__doc__)
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--access-token", default="sim-token")
    parser.add_argument("--app-secret", default="sim-app-secret")
    parser.add_argument("--log-requests", action="store_true", help="print one line per request on stderr")
    args = parser.parse_args(argv)
    sim = CommercePlatformSimulator(
        access_token=args.access_token, app_secret=args.app_secret, log_requests=args.log_requests
    )
    seed(sim)
    sim.start(port=args.port)
    print(instructions(sim, args.access_token, appsecret_proof(args.access_token, args.app_secret)), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()


if __name__ == "__main__":
    main()
