"""The recompute queue's two message shapes, and one batch: prefetch once, settings first, each SKU once."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import ValidationError

from stocksync.errors import InvalidInputError
from stocksync.integrations.sqs_batch import redelivered
from stocksync.logic.recompute import StateReads
from stocksync.logic.recompute_batch import RecomputeQueueBatch, parse_recompute_message
from stocksync.models.sku import SkuSettingsChange, SkuState
from tests.support import bus_event, sqs_event

BUCKETS = ("fast", "slow")


def settings_event(**detail: Any) -> str:
    return json.dumps(bus_event("SKU Settings Changed", {"as_of": "2026-11-23T10:00:00Z", **detail}))


def test_a_plain_message_names_its_sku() -> None:
    message = parse_recompute_message('{"retailer_id": "A", "reason": "orders", "extra": 1}', BUCKETS)
    assert (message.retailer_id, message.settings_change) == ("A", None)


def test_a_settings_event_carries_its_change() -> None:
    message = parse_recompute_message(settings_event(retailer_id="A", bucket="slow", discontinued=True), BUCKETS)
    assert message.retailer_id == "A"
    assert message.settings_change is not None
    assert message.settings_change.changes() == {"bucket": "slow", "discontinued": True}


@pytest.mark.parametrize(
    ("body", "error", "field"),
    [
        ('{"reason": "orders"}', ValidationError, "retailer_id"),
        ('{"retailer_id": ""}', ValidationError, "retailer_id"),
        ("[1, 2]", ValidationError, ""),
        ("{oops", json.JSONDecodeError, ""),
        (settings_event(retailer_id="A", allocation_percent=101), ValidationError, "allocation_percent"),
        (settings_event(retailer_id="A", allocation_percent=-1), ValidationError, "allocation_percent"),
        (settings_event(retailer_id="A", allocation_fixed=-3), ValidationError, "allocation_fixed"),
        (settings_event(retailer_id="A", allocation_percent=5, allocation_fixed=3), ValidationError, ""),
        (settings_event(retailer_id="A"), ValidationError, ""),  # names nothing to change
        (settings_event(bucket="fast"), ValidationError, "retailer_id"),
        (settings_event(retailer_id="A", bucket="turbo"), InvalidInputError, "detail.bucket"),
        (json.dumps(bus_event("Order Changed", {"retailer_id": "A"})), InvalidInputError, "detail-type"),
    ],
)
def test_bad_messages_raise_an_error_naming_the_field(body: str, error: type[Exception], field: str) -> None:
    with pytest.raises(error) as raised:
        parse_recompute_message(body, BUCKETS)
    if isinstance(raised.value, ValidationError):
        assert field in {".".join(str(part) for part in issue["loc"]) for issue in raised.value.errors()} or not field
    elif isinstance(raised.value, InvalidInputError):
        assert raised.value.field == field


class Store:
    def __init__(self, states: Iterable[SkuState], invalid: dict[str, str] | None = None) -> None:
        self.states = {state.retailer_id: state for state in states}
        self.invalid = invalid or {}
        self.reads: list[set[str]] = []
        self.applied: list[SkuSettingsChange] = []
        self.stale: set[str] = set()

    def read_states(self, retailer_ids: Iterable[str]) -> StateReads:
        wanted = set(retailer_ids)
        self.reads.append(wanted)
        return StateReads(
            states={rid: s for rid, s in self.states.items() if rid in wanted},
            invalid={rid: why for rid, why in self.invalid.items() if rid in wanted},
        )

    def apply_settings(self, change: SkuSettingsChange) -> SkuState | None:
        self.applied.append(change)
        if change.retailer_id in self.stale:
            return None
        updated = self.states[change.retailer_id].model_copy(update={"discontinued": bool(change.discontinued)})
        self.states[change.retailer_id] = updated
        return updated


class Recompute:
    def __init__(self) -> None:
        self.added: list[SkuState] = []
        self.redelivered: list[bool] = []

    def add(self, state: SkuState, *, redelivered: bool = False) -> None:
        self.added.append(state)
        self.redelivered.append(redelivered)


def prefetch(batch: RecomputeQueueBatch, event: dict[str, Any]) -> None:
    batch.prefetch(record["body"] for record in event["Records"])


def handle(batch: RecomputeQueueBatch, raw: dict[str, Any]) -> None:
    """What recompute_stock's wiring does with each SQS record."""
    record = SQSRecord(raw)
    batch.handle(record.message_id, record.body, redelivered=redelivered(record))


def run(store: Store, bodies: list[Any]) -> Recompute:
    recompute = Recompute()
    batch = RecomputeQueueBatch(store, recompute, buckets=BUCKETS)
    event = sqs_event(bodies)
    prefetch(batch, event)
    for record in event["Records"]:
        handle(batch, record)
    return recompute


def test_one_batched_read_and_each_sku_recomputed_once() -> None:
    store = Store([SkuState(retailer_id="A"), SkuState(retailer_id="B")])
    recompute = run(store, [{"retailer_id": "A"}, {"retailer_id": "B"}, {"retailer_id": "A"}])
    assert store.reads == [{"A", "B"}]
    assert [state.retailer_id for state in recompute.added] == ["A", "B"]


def test_a_settings_change_is_applied_first_and_its_new_state_recomputed() -> None:
    store = Store([SkuState(retailer_id="A")])
    recompute = run(store, [{"retailer_id": "A"}, settings_event(retailer_id="A", discontinued=True)])
    assert [state.discontinued for state in recompute.added] == [False, True]  # the change is never skipped


def test_a_stale_settings_change_recomputes_the_stored_state() -> None:
    store = Store([SkuState(retailer_id="A", discontinued=True)])
    store.stale.add("A")
    recompute = run(store, [settings_event(retailer_id="A", discontinued=False)])
    assert [state.discontinued for state in recompute.added] == [True]


def test_an_invalid_record_is_an_input_error_and_a_missing_one_has_no_warehouse_level() -> None:
    store = Store([], invalid={"BAD": "allocation_percent: Input should be less than or equal to 100"})
    recompute = Recompute()
    batch = RecomputeQueueBatch(store, recompute, buckets=BUCKETS)
    event = sqs_event([{"retailer_id": "BAD"}, {"retailer_id": "NEW"}])
    prefetch(batch, event)
    with pytest.raises(InvalidInputError, match="SKU record BAD: allocation_percent") as raised:
        handle(batch, event["Records"][0])
    assert raised.value.field == "sku"
    handle(batch, event["Records"][1])
    assert recompute.added == [SkuState(retailer_id="NEW")]


def test_a_redelivered_message_says_so_and_the_batch_names_the_messages_of_each_sku() -> None:
    store = Store([SkuState(retailer_id="A"), SkuState(retailer_id="B")])
    recompute = Recompute()
    batch = RecomputeQueueBatch(store, recompute, buckets=BUCKETS)
    event = sqs_event([{"retailer_id": "A"}, {"retailer_id": "B"}, {"retailer_id": "A"}])
    event["Records"][1]["attributes"]["ApproximateReceiveCount"] = "2"
    prefetch(batch, event)
    for record in event["Records"]:
        handle(batch, record)
    # The second try of B's message may follow a first try that claimed a version and died before sending it.
    assert recompute.redelivered == [False, True]
    # Every message that asked for A comes back if A's push could not be sent.
    assert batch.message_ids(["A"]) == ["msg-0", "msg-2"]
