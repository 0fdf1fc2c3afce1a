"""SKU records in DynamoDB: the "state" record per SKU and its hourly "sold#" velocity records."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from stocksync import clock
from stocksync.dal.batch_reads import batch_get
from stocksync.dal.codec import decode, encode
from stocksync.dal.keys import SKU_BUCKET_INDEX, SKU_SOLD_RECORD_PREFIX, SKU_STATE_RECORD
from stocksync.errors import describe_validation_error
from stocksync.logic.recompute import BucketPage, StateReads
from stocksync.models.instants import MAX_CLOCK_SKEW
from stocksync.models.inventory import WarehouseLevel
from stocksync.models.push import BatchEntry, ConfirmReceipt
from stocksync.models.sku import (
    CatalogBasis,
    PlatformMove,
    PushMessage,
    SkuSettingsChange,
    SkuState,
    Visibility,
    as_ms,
    from_ms,
)

# Confirmations are one conditional UpdateItem per SKU (no batch write takes a condition); this many run at once,
# within botocore's default pool of 10 connections per client (more threads would only queue for a connection).
_CONFIRM_WORKERS = 10
# The confirmed push is also the catalog's anchor: its value was shown from some instant between sending the call
# and seeing the batch finished (logic/catalog_model.py).
_CONFIRMED_FIELDS = (
    "confirmed_value = :value, confirmed_visibility = :visibility, confirmed_at = :at, "
    "confirmed_accepted_ms = :accepted, catalog_value = :value, catalog_visibility = :visibility, "
    "catalog_from_ms = :sent, catalog_to_ms = :confirmed_ms, catalog_basis = :push"
)
# The version is newer than the confirmed one, and the platform did not accept a row of this SKU after ours.
_CONFIRM_CONDITION = (
    "attribute_exists(retailer_id) "
    "AND (attribute_not_exists(confirmed_version) OR confirmed_version < :version) "
    "AND (attribute_not_exists(confirmed_accepted_ms) OR confirmed_accepted_ms <= :accepted)"
)
# A newer version was confirmed, but the platform accepted ours after it: ours is what the catalog shows.
_STALE_CONDITION = "confirmed_version > :version AND confirmed_accepted_ms < :accepted"
# The same version went out twice (a redelivery) and this batch was accepted after the one already confirmed: it
# overwrote the catalog again, later, so its window is the anchor (orders between the two were erased by it).
_REPEAT_CONDITION = "confirmed_version = :version AND confirmed_accepted_ms < :accepted"


_as_ms = as_ms


def _horizon_ms() -> int:
    """now + MAX_CLOCK_SKEW in ms: a stored ``as_of`` past it was written before the models refused such dates, and
    no longer wins (models/instants.py)."""
    return _as_ms(clock.now() + MAX_CLOCK_SKEW)


# Catalog read anchors: nothing pushed since the state was read (no claim, nothing in flight), and the read began
# once the current anchor had ended, so the value read is the newest thing known about the catalog.
_READ_CONDITION = (
    "attribute_exists(retailer_id) AND {published} AND {confirmed} "
    "AND (attribute_not_exists(catalog_to_ms) OR catalog_to_ms <= :read_from)"
)


def _optional_ms(item: dict[str, Any], name: str) -> datetime | None:
    value = item.get(name)
    return from_ms(int(value)) if value is not None else None


def state_from_item(item: dict[str, Any]) -> SkuState:
    return SkuState.model_validate(
        {
            **item,
            "warehouse_as_of": _optional_ms(item, "warehouse_as_of_ms"),
            "catalog_from": _optional_ms(item, "catalog_from_ms"),
            "catalog_to": _optional_ms(item, "catalog_to_ms"),
            "read_at": _optional_ms(item, "read_at_ms"),
            "platform_moves": [PlatformMove.from_stored(move) for move in item.get("platform_moves", [])],
        }
    )


def _version_is(name: str, version: int) -> str:
    if version == 0:
        return f"(attribute_not_exists({name}) OR {name} = :version)"
    return f"{name} = :version"


def _checked_state(raw: dict[str, Any]) -> tuple[str, SkuState | str]:
    """(retailer id, state), or (retailer id, why the record is not a valid state): one bad record must not stop
    the other SKUs of its batch or sweep page."""
    item = decode(raw)
    try:
        return item["retailer_id"], state_from_item(item)
    except ValidationError as error:
        return item["retailer_id"], describe_validation_error(error)


def _is_condition_failure(error: ClientError) -> bool:
    return error.response["Error"]["Code"] == "ConditionalCheckFailedException"


class SkuTable:
    """Reads and conditional writes of SKU records (the ledger transaction writes the counters)."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table
        self.requests = 0

    def get_states(self, retailer_ids: Iterable[str]) -> dict[str, SkuState]:
        states = (state_from_item(decode(raw)) for raw in self._state_items(retailer_ids))
        return {state.retailer_id: state for state in states}

    def _state_items(self, retailer_ids: Iterable[str]) -> Iterator[dict[str, Any]]:
        keys = [encode({"retailer_id": rid, "record": SKU_STATE_RECORD}) for rid in sorted(set(retailer_ids))]
        yield from batch_get(self._client, self._table, keys, on_request=self._count_request)

    def _count_request(self) -> None:
        self.requests += 1

    def put_warehouse_level(self, level: WarehouseLevel, *, default_bucket: str) -> bool:
        """Store I unless a greater level is stored. True when ``level`` is what the table holds now: stored, or a
        repeat of the stored level written again; False when it is stale.

        The order (models/inventory.py says why): ``warehouse_as_of_ms``, then ``warehouse_sequence`` (a level without
        one stores 0, and a record written before sequences existed has none, which counts as 0), then arrival: an
        equal key passes the condition, so the later of two equal levels wins and a retry's repeat reports True, which
        makes the caller enqueue the SKU for recompute again (the first try may have crashed before its enqueue).
        The SKU joins ``default_bucket`` if it has none yet, so the bucket sweeps start covering it.

        A stored ``as_of`` past now plus the allowed clock skew (models/instants.py) no longer wins: the models refuse
        such a level now, but one stored before they did (a level dated 2099) would otherwise freeze the SKU's I
        until that date; the next real level replaces it.
        """
        as_of_ms, sequence = level.order_key
        self.requests += 1
        try:
            self._client.update_item(
                TableName=self._table,
                Key=encode({"retailer_id": level.retailer_id, "record": SKU_STATE_RECORD}),
                UpdateExpression=(
                    "SET warehouse_level = :level, warehouse_as_of_ms = :as_of, warehouse_sequence = :sequence, "
                    "#bucket = if_not_exists(#bucket, :bucket)"
                ),
                ConditionExpression=(
                    "attribute_not_exists(warehouse_as_of_ms) OR warehouse_as_of_ms < :as_of "
                    "OR warehouse_as_of_ms > :horizon OR (warehouse_as_of_ms = :as_of "
                    "AND (attribute_not_exists(warehouse_sequence) OR warehouse_sequence <= :sequence))"
                ),
                ExpressionAttributeNames={"#bucket": "bucket"},
                ExpressionAttributeValues=encode(
                    {
                        ":level": level.level,
                        ":as_of": as_of_ms,
                        ":sequence": sequence,
                        ":bucket": default_bucket,
                        ":horizon": _horizon_ms(),
                    }
                ),
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False  # a greater level is stored: this one is stale
            raise
        return True

    def units_sold(self, retailer_id: str, *, since: datetime) -> int:
        """Units ordered since ``since`` (hour granularity), from the SKU's own velocity records: one Query."""
        paginator = self._client.get_paginator("query")
        total = 0
        for page in paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="retailer_id = :rid AND #record BETWEEN :low AND :high",
            ExpressionAttributeNames={"#record": "record"},
            ExpressionAttributeValues=encode(
                {
                    ":rid": retailer_id,
                    ":low": SKU_SOLD_RECORD_PREFIX + since.astimezone(UTC).strftime("%Y-%m-%dT%H"),
                    ":high": SKU_SOLD_RECORD_PREFIX + "~",
                }
            ),
        ):
            self.requests += 1
            total += sum(int(decode(raw)["units"]) for raw in page.get("Items", []))
        return total

    def velocity(self, retailer_id: str, *, now: datetime, window: timedelta) -> float:
        """Units per hour over the trailing window."""
        hours = max(window / timedelta(hours=1), 1.0)
        return self.units_sold(retailer_id, since=now - window) / hours

    def bucket_states(
        self, bucket: str, *, page_size: int = 1000, start_key: dict | None = None
    ) -> Iterator[tuple[list[SkuState], dict | None]]:
        """A bucket's SKUs from the sparse bucket index, one page at a time with the key to resume from."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": SKU_BUCKET_INDEX,
            "KeyConditionExpression": "#bucket = :bucket",
            "ExpressionAttributeNames": {"#bucket": "bucket"},
            "ExpressionAttributeValues": encode({":bucket": bucket}),
            "Limit": page_size,
        }
        while True:
            if start_key:
                request["ExclusiveStartKey"] = start_key
            self.requests += 1
            answer = self._client.query(**request)
            states = [state_from_item(decode(raw)) for raw in answer.get("Items", [])]
            start_key = answer.get("LastEvaluatedKey")
            yield states, start_key
            if not start_key:
                return

    def counters(self, retailer_ids: Sequence[str]) -> dict[str, tuple[int, int, int]]:
        """(P, C, K) per SKU, for reconciliation."""
        return {
            rid: (state.pending_processing, state.pending_created, state.acknowledged_unsynced)
            for rid, state in self.get_states(retailer_ids).items()
        }

    def confirm_pushes(
        self,
        entries: Sequence[BatchEntry],
        *,
        accepted_at: datetime,
        confirmed_at: datetime,
        sent_at: datetime | None = None,
    ) -> ConfirmReceipt:
        """Record that the platform applied these rows (accepted at ``accepted_at``): the SKU's confirmed_* fields.

        Never over a newer version: the condition keeps confirmed_version monotonic. One exception keeps the record
        truthful: the platform applies batches in the order it accepted them, so when a newer version was confirmed
        from a batch accepted *before* ours (two push invocations raced), the catalog shows our older value; the
        value fields then say so (the version stays) and recompute pushes again. The same update makes the row the
        SKU's catalog anchor: shown from an instant between ``sent_at`` and ``confirmed_at``. The receipt carries
        each landed SKU's new state, so the caller can tell which ones the platform's moves made ambiguous.
        """
        receipt = ConfirmReceipt()
        values = {
            ":at": confirmed_at.astimezone(UTC).isoformat(),
            ":confirmed_ms": _as_ms(confirmed_at),
            ":accepted": _as_ms(accepted_at),
            ":sent": _as_ms(sent_at or accepted_at),
            ":push": CatalogBasis.PUSH.value,
        }
        if len(entries) <= 1:
            outcomes = [self._confirm_one(entry, values) for entry in entries]
        else:
            with ThreadPoolExecutor(max_workers=_CONFIRM_WORKERS) as pool:
                outcomes = list(pool.map(lambda entry: self._confirm_one(entry, values), entries))
        for entry, (outcome, state) in zip(entries, outcomes, strict=True):
            getattr(receipt, outcome).append(entry.retailer_id)
            if state is not None:
                receipt.states[entry.retailer_id] = state
        return receipt

    def _confirm_one(self, entry: BatchEntry, shared: dict[str, Any]) -> tuple[str, SkuState | None]:
        values = {**shared, ":value": entry.value, ":visibility": entry.visibility.value, ":version": entry.version}
        key = encode({"retailer_id": entry.retailer_id, "record": SKU_STATE_RECORD})
        attempts = (
            ("confirmed", f"SET {_CONFIRMED_FIELDS}, confirmed_version = :version", _CONFIRM_CONDITION),
            ("stale_corrected", f"SET {_CONFIRMED_FIELDS}", _STALE_CONDITION),
            ("re_anchored", f"SET {_CONFIRMED_FIELDS}", _REPEAT_CONDITION),
        )
        for outcome, update, condition in attempts:
            self.requests += 1
            try:
                answer = self._client.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeValues=encode(values),
                    ReturnValues="ALL_NEW",
                )
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
                continue
            _, state = _checked_state(answer["Attributes"])
            return outcome, state if isinstance(state, SkuState) else None
        return "refused", None

    def mark_not_in_catalog(self, retailer_id: str, version: int) -> bool:
        """The catalog refused ``version`` as an unknown retailer id: mark the SKU so recompute stops pushing it
        (logic/pushing.py, ``not_in_catalog``). Not when a newer version was confirmed since (the item exists after
        all). True when the SKU was not marked before, so the caller reports it once."""
        self.requests += 1
        try:
            answer = self._client.update_item(
                TableName=self._table,
                Key=encode({"retailer_id": retailer_id, "record": SKU_STATE_RECORD}),
                UpdateExpression="SET not_in_catalog_version = :version",
                ConditionExpression=(
                    "attribute_exists(retailer_id) "
                    "AND (attribute_not_exists(confirmed_version) OR confirmed_version < :version)"
                ),
                ExpressionAttributeValues=encode({":version": version}),
                ReturnValues="UPDATED_OLD",
            )
        except ClientError as error:
            if _is_condition_failure(error):
                return False
            raise
        return "not_in_catalog_version" not in answer.get("Attributes", {})

    def found_in_catalog(self, retailer_id: str) -> bool:
        """A catalog read listed the item of a SKU marked not in the catalog: unmark it, so recompute pushes it
        again. True when this call unmarked it."""
        self.requests += 1
        try:
            self._client.update_item(
                TableName=self._table,
                Key=encode({"retailer_id": retailer_id, "record": SKU_STATE_RECORD}),
                UpdateExpression="REMOVE not_in_catalog_version",
                ConditionExpression="attribute_exists(not_in_catalog_version)",
            )
        except ClientError as error:
            if _is_condition_failure(error):
                return False
            raise
        return True

    # ------------------------------------------------------------------------------------------- catalog reads

    def record_catalog_read(
        self,
        retailer_id: str,
        *,
        value: int,
        visibility: Visibility,
        read_from: datetime,
        read_to: datetime,
        published_version: int,
    ) -> bool:
        """Make a value read from the catalog the SKU's anchor, if nothing was pushed since ``published_version``
        was read (no claim and nothing in flight) and the read began after the current anchor ended. False when
        either no longer holds: the read says nothing certain, and the push in flight will anchor the SKU."""
        condition = _READ_CONDITION.format(
            published=_version_is("published_version", published_version),
            confirmed=_version_is("confirmed_version", published_version),
        )
        self.requests += 1
        try:
            self._client.update_item(
                TableName=self._table,
                Key=encode({"retailer_id": retailer_id, "record": SKU_STATE_RECORD}),
                UpdateExpression=(
                    "SET catalog_value = :value, catalog_visibility = :visibility, catalog_from_ms = :read_from, "
                    "catalog_to_ms = :read_to, catalog_basis = :read, "
                    "read_value = :value, read_visibility = :visibility, read_at_ms = :read_to"
                ),
                ConditionExpression=condition,
                ExpressionAttributeValues=encode(
                    {
                        ":value": value,
                        ":visibility": visibility.value,
                        ":read_from": _as_ms(read_from),
                        ":read_to": _as_ms(read_to),
                        ":read": CatalogBasis.READ.value,
                        ":version": published_version,
                    }
                ),
            )
        except ClientError as error:
            if _is_condition_failure(error):
                return False
            raise
        return True

    def prune_moves(self, state: SkuState, indexes: Sequence[int]) -> bool:
        """Drop platform moves that are behind the catalog anchor. The condition pins the list to the one read
        (no move appended, no other prune since), so the indexes still name the same moves."""
        if not indexes:
            return False
        pruned = "attribute_not_exists(platform_moves_pruned) OR platform_moves_pruned = :pruned"
        self.requests += 1
        try:
            self._client.update_item(
                TableName=self._table,
                Key=encode({"retailer_id": state.retailer_id, "record": SKU_STATE_RECORD}),
                UpdateExpression="REMOVE "
                + ", ".join(f"platform_moves[{index}]" for index in sorted(indexes))
                + " ADD platform_moves_pruned :count",
                ConditionExpression=f"platform_moves_total = :total AND ({pruned})",
                ExpressionAttributeValues=encode(
                    {
                        ":total": state.platform_moves_total,
                        ":pruned": state.platform_moves_pruned,
                        ":count": len(indexes),
                    }
                ),
            )
        except ClientError as error:
            if _is_condition_failure(error):
                return False
            raise
        return True

    # ------------------------------------------------------------------------------------------- stock recompute

    def read_states(self, retailer_ids: Iterable[str]) -> StateReads:
        """Like ``get_states`` (batched, consistent), but a record that is not a valid state is reported, not raised."""
        reads = StateReads()
        for raw in self._state_items(retailer_ids):
            retailer_id, state = _checked_state(raw)
            if isinstance(state, SkuState):
                reads.states[retailer_id] = state
            else:
                reads.invalid[retailer_id] = state
        return reads

    def bucket_page(self, bucket: str, *, after: str | None, page_size: int) -> BucketPage:
        """One page of the sparse bucket index (projection ALL: no per-SKU read), resuming after a retailer id."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": SKU_BUCKET_INDEX,
            "KeyConditionExpression": "#bucket = :bucket",
            "ExpressionAttributeNames": {"#bucket": "bucket"},
            "ExpressionAttributeValues": encode({":bucket": bucket}),
            "Limit": page_size,
        }
        if after is not None:
            request["ExclusiveStartKey"] = encode({"bucket": bucket, "retailer_id": after, "record": SKU_STATE_RECORD})
        self.requests += 1
        answer = self._client.query(**request)
        page = BucketPage(states=[], invalid={}, last_retailer_id=None, has_more="LastEvaluatedKey" in answer)
        for raw in answer.get("Items", []):
            retailer_id, state = _checked_state(raw)
            if isinstance(state, SkuState):
                page.states.append(state)
            else:
                page.invalid[retailer_id] = state
            page.last_retailer_id = retailer_id
        return page

    def claim_push(self, push: PushMessage, *, expected_version: int, platform_units: int) -> bool:
        """Record ``push`` as the SKU's published value if its published_version is still ``expected_version``.

        The condition makes the version a claim: of two concurrent recomputes only one publishes version v + 1.
        """
        condition = "published_version = :expected"
        if expected_version == 0:
            condition = f"attribute_not_exists(published_version) OR {condition}"
        self.requests += 1
        try:
            self._client.update_item(
                TableName=self._table,
                Key=encode({"retailer_id": push.retailer_id, "record": SKU_STATE_RECORD}),
                UpdateExpression=(
                    "SET published_value = :value, published_visibility = :visibility, published_version = :version, "
                    "published_at = :at, published_platform_units = :units"
                ),
                ConditionExpression=f"attribute_exists(retailer_id) AND ({condition})",
                ExpressionAttributeValues=encode(
                    {
                        ":value": push.value,
                        ":visibility": push.visibility.value,
                        ":version": push.version,
                        ":at": push.computed_at.isoformat(),
                        ":units": platform_units,
                        ":expected": expected_version,
                    }
                ),
            )
        except ClientError as error:
            if _is_condition_failure(error):
                return False
            raise
        return True

    def apply_settings(self, change: SkuSettingsChange) -> SkuState | None:
        """Apply a SKU's own settings unless a change with a newer (or the same) ``as_of`` was applied already.

        Returns the SKU's new state, or None when the change is stale or a repeat.
        """
        sets = {"settings_as_of_ms = :as_of"}
        removes: set[str] = set()
        values: dict[str, Any] = {
            ":as_of": _as_ms(change.as_of),
            ":horizon": _horizon_ms(),
        }
        for name, value in change.changes().items():
            if name == "bucket":
                if value is not None:
                    sets.add("#bucket = :bucket")
                    values[":bucket"] = value
                sets.add("bucket_explicit = :explicit")
                values[":explicit"] = value is not None
            elif name == "discontinued":
                sets.add("discontinued = :discontinued")
                values[":discontinued"] = bool(value)
            elif value is None:
                removes.add(name)
            else:  # one allocation per SKU: setting one kind clears the other
                sets.add(f"{name} = :{name}")
                values[f":{name}"] = value
                removes.add("allocation_fixed" if name == "allocation_percent" else "allocation_percent")
        expression = "SET " + ", ".join(sorted(sets))
        if removes:
            expression += " REMOVE " + ", ".join(sorted(removes))
        self.requests += 1
        try:
            answer = self._client.update_item(
                TableName=self._table,
                Key=encode({"retailer_id": change.retailer_id, "record": SKU_STATE_RECORD}),
                UpdateExpression=expression,
                # A stored as_of past now plus the skew (written before the models refused it) wins no longer.
                ConditionExpression=(
                    "attribute_not_exists(settings_as_of_ms) OR settings_as_of_ms < :as_of "
                    "OR settings_as_of_ms > :horizon"
                ),
                ExpressionAttributeNames={"#bucket": "bucket"} if ":bucket" in values else {},
                ExpressionAttributeValues=encode(values),
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _is_condition_failure(error):
                return None
            raise
        return state_from_item(decode(answer["Attributes"]))

    def move_bucket(self, retailer_id: str, *, from_bucket: str, to_bucket: str) -> bool:
        """Move a SKU still in ``from_bucket`` and without an explicit bucket; False when either no longer holds."""
        self.requests += 1
        try:
            self._client.update_item(
                TableName=self._table,
                Key=encode({"retailer_id": retailer_id, "record": SKU_STATE_RECORD}),
                UpdateExpression="SET #bucket = :to",
                ConditionExpression=(
                    "#bucket = :from AND (attribute_not_exists(bucket_explicit) OR bucket_explicit = :false)"
                ),
                ExpressionAttributeNames={"#bucket": "bucket"},
                ExpressionAttributeValues=encode({":to": to_bucket, ":from": from_bucket, ":false": False}),
            )
        except ClientError as error:
            if _is_condition_failure(error):
                return False
            raise
        return True
