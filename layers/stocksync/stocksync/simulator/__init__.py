"""The Commerce Platform simulator: a faithful local test double of Meta's Graph API for stocksync.

Only tests, benchmarks and the CLI import it; the product talks to it over HTTP exactly as it talks to Graph.
"""

from stocksync.simulator.auth import appsecret_proof
from stocksync.simulator.commerce_platform import CommercePlatformSimulator
from stocksync.simulator.errors import OrderActionRefused, OrderRefused, UnknownOrderError

__all__ = [
    "CommercePlatformSimulator",
    "OrderActionRefused",
    "OrderRefused",
    "UnknownOrderError",
    "appsecret_proof",
]
