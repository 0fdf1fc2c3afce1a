"""Warehouse input: stock levels (I) and "order synced" notices, as the warehouse publishes them."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from stocksync.models.orders import OrderId, RetailerId


class WarehouseLevel(BaseModel):
    """Units on hand for one SKU at ``as_of``. The newest ``as_of`` wins; an older level never overwrites it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    retailer_id: RetailerId
    level: Annotated[int, Field(strict=True, ge=0)]
    as_of: AwareDatetime


class WarehouseLevelsDetail(BaseModel):
    """EventBridge detail of a "Warehouse Stock Levels" event: many SKUs per event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    levels: Annotated[list[WarehouseLevel], Field(min_length=1, max_length=5000)]


class OrdersSyncedDetail(BaseModel):
    """EventBridge detail of a "Warehouse Orders Synced" event: orders the warehouse has now accounted for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    order_ids: Annotated[list[OrderId], Field(min_length=1, max_length=1000)]
    as_of: AwareDatetime
