"""The Commerce Platform simulator: a faithful local test double of Meta's Graph API for stocksync.

Only tests, benchmarks and the CLI import it; the product talks to it over HTTP exactly as it talks to Graph.
"""

from stocksync_dev.simulator.auth import appsecret_proof
from stocksync_dev.simulator.commerce_platform import CommercePlatformSimulator
from stocksync_dev.simulator.errors import OrderActionRefused, OrderRefused, UnknownOrderError

__all__ = [
    "CommercePlatformSimulator",
    "OrderActionRefused",
    "OrderRefused",
    "UnknownOrderError",
    "appsecret_proof",
]
