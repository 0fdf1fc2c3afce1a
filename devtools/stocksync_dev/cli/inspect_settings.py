"""Where ``stocksync status`` and ``stocksync explain`` find the stack they look at, and what "now" is there.

One function each, so the stack resolver (``--stack-name``/``--profile``/``--region``) can replace the first without
touching the commands: today the settings are the functions' own environment variables (SKU_TABLE, CONTROL_TABLE,
DEAD_LETTER_QUEUE_URL, STOCKSYNC_CATALOG_ID, ...; AWS_ENDPOINT_URL for local AWS), read exactly as
``stocksync reconcile`` and ``stocksync audit`` read them.
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from stocksync import clock
from stocksync.errors import ConfigurationError
from stocksync.models.settings import Settings, get_settings

# Set by ``stocksync replay --keep`` in the file it writes: a kept local stack stands at the replay's simulated time
# (its records are stamped with that clock), so "this hour" and "seconds ago" are counted from there, not from now.
NOW_VARIABLE = "STOCKSYNC_NOW"


def settings_for(args: argparse.Namespace) -> Settings:
    """The deployment's settings. Raises ConfigurationError naming the first missing or invalid one."""
    del args  # the stack resolver will read --stack-name, --profile and --region from here
    return get_settings()


def reference_now() -> datetime:
    """The deployment's clock: ``STOCKSYNC_NOW`` (ISO 8601 with offset) when set, else the product's clock."""
    text = os.environ.get(NOW_VARIABLE, "").strip()
    if not text:
        return clock.now()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigurationError(NOW_VARIABLE, f"not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        raise ConfigurationError(NOW_VARIABLE, f"needs a UTC offset: {text!r}")
    return moment.astimezone(UTC)


def describe_aws_error(error: ClientError | BotoCoreError) -> str:
    """One line for an AWS call that failed: the operation and AWS's message, or the endpoint that did not answer
    (a kept replay that was stopped: its file outlives it only if the process was killed hard)."""
    if isinstance(error, EndpointConnectionError):
        return f"{error} (if this is a kept replay's stack: is `stocksync replay --keep` still running?)"
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{error.operation_name}: {details.get('Code', '')}: {details.get('Message', '')}"
    return str(error)
