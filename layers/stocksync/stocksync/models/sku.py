"""Per-SKU state: the formula's inputs (I, P, C, K), its bucket and allocation, and what was last published."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class SkuState(BaseModel):
    """The SKU's "state" record. Counters are maintained by the ledger transaction, never set directly."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    retailer_id: str
    warehouse_level: int | None = None  # I; None until the warehouse reported the SKU
    warehouse_as_of: datetime | None = None
    pending_processing: int = Field(default=0, ge=0)  # P
    pending_created: int = Field(default=0, ge=0)  # C
    acknowledged_unsynced: int = Field(default=0, ge=0)  # K (platform deduction mode)
    # Running sum of what the platform did to its own copy: -units ordered on FB/IG, +units it restocked.
    platform_units: int = 0
    bucket: str | None = None
    bucket_explicit: bool = False
    allocation_percent: int | None = Field(default=None, ge=0, le=100)
    allocation_fixed: int | None = Field(default=None, ge=0)
    discontinued: bool = False
    published_value: int | None = None
    published_version: int = 0
    confirmed_value: int | None = None
    confirmed_version: int = 0
    # platform_units when the confirmed value was computed: the catalog shows confirmed + (now - this).
    confirmed_platform_units: int = 0

    @property
    def has_warehouse_level(self) -> bool:
        return self.warehouse_level is not None
