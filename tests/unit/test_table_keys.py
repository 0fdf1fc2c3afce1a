"""The key and index names the code addresses are the ones template.yaml declares (the single source of truth)."""

from __future__ import annotations

from typing import Any

import pytest

from stocksync.dal import keys
from stocksync_dev.local.template import load_template

TABLES = {
    "SkuTable": (keys.SKU_KEY, {keys.SKU_BUCKET_INDEX: keys.SKU_BUCKET_INDEX_KEY}),
    "OrdersTable": (keys.LEDGER_KEY, {keys.LEDGER_OPEN_INDEX: keys.LEDGER_OPEN_INDEX_KEY}),
    "BatchesTable": (keys.BATCH_KEY, {}),
    "ControlTable": (keys.CONTROL_KEY, {}),
    "IdempotencyTable": (keys.IDEMPOTENCY_KEY, {}),
}


def key_names(schema: list[dict[str, Any]]) -> tuple[str, ...]:
    ordered = sorted(schema, key=lambda element: element["KeyType"] != "HASH")
    return tuple(element["AttributeName"] for element in ordered)


@pytest.mark.parametrize("logical_id", sorted(TABLES))
def test_the_code_addresses_the_keys_and_indexes_the_template_declares(logical_id: str) -> None:
    table = load_template()["Resources"][logical_id]["Properties"]
    key, indexes = TABLES[logical_id]
    assert key_names(table["KeySchema"]) == key
    declared = {index["IndexName"]: key_names(index["KeySchema"]) for index in table.get("GlobalSecondaryIndexes", [])}
    assert declared == indexes
    if logical_id != "IdempotencyTable":
        assert table["TimeToLiveSpecification"] == {"AttributeName": keys.TTL_ATTRIBUTE, "Enabled": True}
