"""Push planning: parsing with reasons, newest-version coalescing, dropping stale versions, minimal packing."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from stocksync.integrations.sqs_batch import rejection_reason
from stocksync.logic.push_planning import ReceivedPush, catalog_fields, coalesce, pack, parse_push_record, select
from stocksync.models.push import QueuedPush
from stocksync.models.sku import SkuState

T0 = datetime(2026, 11, 23, 9, tzinfo=UTC)


def body(sku: str = "SKU-1", value: object = 5, version: object = 1, **extra: object) -> str:
    message = {"retailer_id": sku, "value": value, "version": version, "visibility": "published"}
    message["computed_at"] = T0.isoformat()
    message.update(extra)
    return json.dumps({key: val for key, val in message.items() if val is not None})


def push(sku: str, version: int, value: int = 5, record: str | None = None) -> ReceivedPush:
    message = QueuedPush(retailer_id=sku, value=value, version=version, visibility="published", computed_at=T0)
    return ReceivedPush(record or f"{sku}@{version}", message)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (body(value=-1), "value"),
        (body(version=None), "version"),
        (body(version=0), "version"),
        (body(value="5"), "value"),
        (body(quantity=5), "quantity"),
        (body(visibility="hidden"), "visibility"),
        (body(computed_at="2026-11-23T09:00:00"), "computed_at"),
        ("not json", "body"),
    ],
)
def test_an_invalid_message_is_rejected_with_the_field_named_and_the_rest_kept(raw: str, field: str) -> None:
    assert parse_push_record("good", body()).record_id == "good"
    with pytest.raises(ValidationError) as raised:
        parse_push_record("bad", raw)
    reason = rejection_reason(raised.value)
    assert reason is not None
    assert reason.split(":")[0] == field or field in reason


def test_coalescing_keeps_the_newest_version_per_sku_whatever_the_arrival_order() -> None:
    newest, superseded = coalesce([push("A", 2), push("B", 1), push("A", 5), push("A", 3), push("B", 1, record="dup")])
    assert [(p.retailer_id, p.message.version) for p in newest] == [("A", 5), ("B", 1)]
    assert sorted(p.record_id for p in superseded) == ["A@2", "A@3", "dup"]


@given(st.lists(st.tuples(st.sampled_from("ABCDE"), st.integers(1, 20)), max_size=60))
def test_coalescing_loses_no_sku_and_keeps_each_skus_maximum(pairs: list[tuple[str, int]]) -> None:
    pushes = [push(sku, version, record=str(i)) for i, (sku, version) in enumerate(pairs)]
    newest, superseded = coalesce(pushes)
    assert len(newest) + len(superseded) == len(pushes)
    best = {sku: max(v for s, v in pairs if s == sku) for sku, _ in pairs}
    assert {p.retailer_id: p.message.version for p in newest} == best


def test_versions_below_published_or_at_confirmed_are_not_sent() -> None:
    states = {
        "NEW": SkuState(retailer_id="NEW", published_version=3, confirmed_version=2),
        "OLD": SkuState(retailer_id="OLD", published_version=4, confirmed_version=1),
        "DONE": SkuState(retailer_id="DONE", published_version=3, confirmed_version=3),
        "SLOW": SkuState(retailer_id="SLOW", published_version=1, bucket="slow"),
    }
    selection = select(
        [push("NEW", 3), push("OLD", 3), push("DONE", 3), push("SLOW", 1), push("GONE", 1)], states, {"slow"}
    )
    assert [p.retailer_id for p in selection.to_send] == ["NEW"]
    assert [p.retailer_id for p in selection.superseded] == ["OLD"]
    assert [p.retailer_id for p in selection.already_confirmed] == ["DONE"]
    assert [p.retailer_id for p in selection.feed_served] == ["SLOW"]
    assert [p.retailer_id for p in selection.unknown_sku] == ["GONE"]


ROWS = [push(f"S{i}", 1) for i in range(20_000)]


@settings(deadline=None)
@given(st.integers(0, 20_000), st.integers(1, 5000))
def test_packing_uses_the_minimum_number_of_calls_and_never_exceeds_the_size(rows: int, size: int) -> None:
    pushes = ROWS[:rows]
    calls = pack(pushes, size)
    assert len(calls) == math.ceil(len(pushes) / size)
    assert all(1 <= len(call) <= size for call in calls)
    assert [p for call in calls for p in call] == pushes


def test_a_push_sets_only_the_configured_field_and_the_visibility() -> None:
    message = push("A", 1, value=7).message
    assert catalog_fields(message, "inventory") == {"inventory": 7, "visibility": "published"}
