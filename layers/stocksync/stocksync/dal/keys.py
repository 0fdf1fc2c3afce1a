"""Key attribute and index names of the tables declared in template.yaml.

template.yaml is the single source of truth for the tables; these names are what the code addresses, and
tests/unit/test_table_keys.py fails if they ever disagree with the template.
"""

from __future__ import annotations

SKU_KEY = ("retailer_id", "record")
SKU_STATE_RECORD = "state"
SKU_SOLD_RECORD_PREFIX = "sold#"
SKU_BUCKET_INDEX = "bucket-index"
SKU_BUCKET_INDEX_KEY = ("bucket", "retailer_id")

LEDGER_KEY = ("order_id", "part")
LEDGER_OPEN_INDEX = "open-orders-index"
LEDGER_OPEN_INDEX_KEY = ("open_shard", "order_id")

BATCH_KEY = ("handle",)
CONTROL_KEY = ("name",)
IDEMPOTENCY_KEY = ("id",)

TTL_ATTRIBUTE = "expires_at"
