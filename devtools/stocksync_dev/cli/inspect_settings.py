"""What ``stocksync status`` and ``stocksync explain`` look at, and what "now" is there.

Both take ``--stack-name``/``--profile``/``--region`` and resolve their settings as every command that reaches AWS
does (stocksync_dev.cli.stack_settings): from a deployed stack, the configuration of ``FUNCTION``; without
``--stack-name``, the functions' variables in the environment (SKU_TABLE, CONTROL_TABLE, DEAD_LETTER_QUEUE_URL,
STOCKSYNC_CATALOG_ID, ...; AWS_ENDPOINT_URL for local AWS, as a kept replay's file sets them). Either way every
missing or invalid setting is named at once.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from stocksync import clock
from stocksync.errors import ConfigurationError

# Set by ``stocksync replay --keep`` in the file it writes: a kept local stack stands at the replay's simulated time
# (its records are stamped with that clock), so "this hour" and "seconds ago" are counted from there, not from now.
NOW_VARIABLE = "STOCKSYNC_NOW"
# Whose settings ``--stack-name`` reads: recompute's, the function whose formula both commands show. Its variables
# (template.yaml's Globals, which every function gets) name every table and queue they read, the catalog, the
# buckets, the deduction mode and the call budgets; it is deployed whatever the template's conditions say.
FUNCTION = "RecomputeStockFunction"


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
