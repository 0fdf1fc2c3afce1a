"""Leases in the control table: one item per leased thing, so that only one holder works on it at a time.

A lease is the item ``lease#<name>`` with its ``holder`` (an id the caller chooses, e.g. a sweep's run) and
``expires_at`` (epoch seconds). Every change is one conditional write, so two callers racing for a lease cannot both
win, whatever the interleaving. ``expires_at`` is also the control table's TTL attribute: a lease nobody released
(its holder crashed) is eventually deleted by DynamoDB, though acquire never waits for that, it only compares times.

What a lease is for, how long it lasts and what a caller does when it does not get it are the caller's rules; this
adapter only says who holds what until when.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from stocksync import clock
from stocksync.dal.codec import decode, encode

_PREFIX = "lease#"
_CONDITION_FAILED = "ConditionalCheckFailedException"


@dataclass(frozen=True)
class LeaseClaim:
    """The answer to an acquire or renew: ``held`` when the caller holds the lease now.

    ``holder`` and ``expires_at`` describe the lease as it stands after the call: the caller's own when ``held``,
    otherwise whoever holds it (for the log), or None when nobody does.
    """

    held: bool
    holder: str | None = None
    expires_at: datetime | None = None


def _epoch_seconds_up(moment: datetime) -> int:
    # Stored rounded up and compared with "now" rounded down: a live lease is never taken for expired, at the cost
    # of up to two seconds before an expired one can be taken. Whole seconds, because the TTL attribute is one.
    return math.ceil(moment.timestamp())


def _claim_of(item: dict[str, Any] | None) -> LeaseClaim:
    if not item:
        return LeaseClaim(held=False)
    stored = decode(item)
    return LeaseClaim(
        held=False, holder=stored.get("holder"), expires_at=datetime.fromtimestamp(stored["expires_at"], UTC)
    )


class Leases:
    """Acquire, renew and release named leases held in the control table."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def acquire(self, name: str, holder: str, *, until: datetime) -> LeaseClaim:
        """Hold ``name`` until ``until`` if nobody holds it, its lease has expired, or ``holder`` already holds it
        (a retry of the same holder takes its own lease back). Otherwise the claim names the live holder."""
        now = clock.now()
        item = {
            "name": _PREFIX + name,
            "holder": holder,
            "expires_at": _epoch_seconds_up(until),
            "acquired_at": now.isoformat(),
            "renewed_at": now.isoformat(),
        }
        try:
            self._client.put_item(
                TableName=self._table,
                Item=encode(item),
                ConditionExpression="attribute_not_exists(#name) OR expires_at <= :now OR holder = :holder",
                ExpressionAttributeNames={"#name": "name"},
                ExpressionAttributeValues=encode({":now": math.floor(now.timestamp()), ":holder": holder}),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != _CONDITION_FAILED:
                raise
            return _claim_of(error.response.get("Item"))
        return LeaseClaim(held=True, holder=holder, expires_at=datetime.fromtimestamp(item["expires_at"], UTC))

    def renew(self, name: str, holder: str, *, until: datetime) -> LeaseClaim:
        """Extend ``holder``'s lease on ``name`` to ``until``, only if ``holder`` still holds it (even expired, when
        nobody took it meanwhile). A lease released, or taken by another holder, is not recreated."""
        expires_at = _epoch_seconds_up(until)
        try:
            self._client.update_item(
                TableName=self._table,
                Key=encode({"name": _PREFIX + name}),
                UpdateExpression="SET expires_at = :expires_at, renewed_at = :renewed_at",
                ConditionExpression="holder = :holder",
                ExpressionAttributeValues=encode(
                    {":expires_at": expires_at, ":renewed_at": clock.now().isoformat(), ":holder": holder}
                ),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != _CONDITION_FAILED:
                raise
            return _claim_of(error.response.get("Item"))
        return LeaseClaim(held=True, holder=holder, expires_at=datetime.fromtimestamp(expires_at, UTC))

    def release(self, name: str, holder: str) -> bool:
        """Delete ``holder``'s lease on ``name``; False (and nothing deleted) when another holder has it or nobody."""
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=encode({"name": _PREFIX + name}),
                ConditionExpression="holder = :holder",
                ExpressionAttributeValues=encode({":holder": holder}),
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != _CONDITION_FAILED:
                raise
            return False
        return True

    def current(self, name: str) -> LeaseClaim:
        """The lease on ``name`` as stored (``held`` is always False: this says who holds it, not that you do)."""
        answer = self._client.get_item(TableName=self._table, Key=encode({"name": _PREFIX + name}), ConsistentRead=True)
        return _claim_of(answer.get("Item"))
