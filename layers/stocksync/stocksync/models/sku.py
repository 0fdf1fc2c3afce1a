"""Per-SKU state: the formula's inputs (I, P, C, K), its bucket and allocation, what was last published and
confirmed; the SKU settings a merchant changes; and the push queue's message (the recompute/push contract).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import AwareDatetime, ConfigDict, Field, model_validator

from stocksync.models.base import Model
from stocksync.models.instants import SenderInstant
from stocksync.models.orders import MAX_UNITS, RetailerId


class Visibility(StrEnum):
    """Catalog item visibility.

    A discontinued product is staged (hidden), never deleted (docs/design.md, invariant 4).
    """

    PUBLISHED = "published"
    STAGING = "staging"


class PlatformMove(Model):
    """A change the platform made to its own copy of a SKU's stock: ``units`` (negative for an order placed on
    Facebook/Instagram, positive for a restock), at an instant the product only knows to lie in
    [``not_before``, ``not_after``]. An order lies within the second after its reported placement time (Graph cuts
    it to the second); a restock is known only between two sightings of its order.
    """

    model_config = ConfigDict(frozen=True)

    units: int
    not_before: datetime
    not_after: datetime

    @classmethod
    def from_stored(cls, stored: list[int]) -> PlatformMove:
        units, not_before_ms, not_after_ms = (int(value) for value in stored)
        return cls(units=units, not_before=from_ms(not_before_ms), not_after=from_ms(not_after_ms))

    def stored(self) -> list[int]:
        return [self.units, as_ms(self.not_before), as_ms(self.not_after)]


class CatalogBasis(StrEnum):
    """How the product learned what the catalog showed: a push it saw land, or a read of the catalog."""

    PUSH = "push"
    READ = "read"


def as_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class SkuState(Model):
    """The SKU's "state" record. Counters are maintained by the ledger transaction, never set directly.

    ``published_*`` is the newest value recompute decided to push (``published_version`` is bumped conditionally,
    so one version never carries two values); ``confirmed_*`` is the newest version verify_batch saw land in the
    catalog. ``published_platform_units`` snapshots ``platform_units`` at the claim, so the moves seen while a push
    is in flight are known; ``catalog_*`` and ``platform_moves`` say what the catalog shows (logic/catalog_model.py).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    retailer_id: str
    warehouse_level: int | None = None  # I; None until the warehouse reported the SKU
    warehouse_as_of: datetime | None = None
    pending_processing: int = Field(default=0, ge=0)  # P
    pending_created: int = Field(default=0, ge=0)  # C
    acknowledged_unsynced: int = Field(default=0, ge=0)  # K (platform deduction mode)
    # Running sum of what the platform did to its own copy: -units ordered on FB/IG, +units it restocked.
    platform_units: int = 0
    # When the ledger last moved a counter: a SKU untouched for a whole velocity window sold nothing in it.
    counters_updated_at: datetime | None = None
    bucket: str | None = None
    bucket_explicit: bool = False
    allocation_percent: int | None = Field(default=None, ge=0, le=100)
    allocation_fixed: int | None = Field(default=None, ge=0)
    discontinued: bool = False
    published_value: int | None = None
    published_visibility: Visibility | None = None
    published_version: int = Field(default=0, ge=0)
    published_at: datetime | None = None
    published_platform_units: int = 0
    confirmed_value: int | None = None
    confirmed_visibility: Visibility | None = None
    confirmed_version: int = Field(default=0, ge=0)
    confirmed_at: datetime | None = None
    # What the catalog is known to have shown at some instant in [catalog_from, catalog_to] (docs/catalog.md):
    # a push's value between sending it and seeing it finished, or a value read back from the catalog.
    catalog_value: int | None = Field(default=None, ge=0)
    catalog_visibility: Visibility | None = None
    catalog_from: datetime | None = None
    catalog_to: datetime | None = None
    catalog_basis: CatalogBasis | None = None
    # The newest read of the catalog that anchored the SKU (read_back or the audit): kept apart from catalog_*,
    # which the next confirmed push overwrites, so "what was it last read to show" has an answer afterwards.
    read_value: int | None = Field(default=None, ge=0)
    read_visibility: Visibility | None = None
    read_at: datetime | None = None
    # The platform's own moves not yet known to be behind the catalog anchor (pruned once they are).
    platform_moves: tuple[PlatformMove, ...] = ()
    # How many moves were ever appended / pruned: together they pin the list's content for a conditional prune.
    platform_moves_total: int = Field(default=0, ge=0)
    platform_moves_pruned: int = Field(default=0, ge=0)
    # The version the catalog refused as an unknown retailer id (docs/design.md, "Bounds at the edges"): the SKU is
    # not in the catalog, so nothing is pushed for it (each push would be refused and dead-lettered again) until a
    # catalog read sees the item there. None: pushed as usual.
    not_in_catalog_version: int | None = Field(default=None, ge=1)

    @property
    def has_warehouse_level(self) -> bool:
        return self.warehouse_level is not None

    @model_validator(mode="after")
    def _one_allocation(self) -> Self:
        if self.allocation_percent is not None and self.allocation_fixed is not None:
            raise ValueError("allocation_percent and allocation_fixed are both set; keep one")
        return self


class SkuSettingsChange(Model):
    """Detail of a "SKU Settings Changed" event (the merchant's systems or the CLI): one SKU's own settings.

    A field left out is left as it is; a field sent as null clears the SKU's own value (``bucket: null`` hands the
    SKU back to velocity assignment; a null allocation falls back to the bucket's). The newest ``as_of`` wins: an
    older change delivered late is ignored as a whole.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    retailer_id: RetailerId
    as_of: SenderInstant
    bucket: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    allocation_percent: Annotated[int, Field(strict=True, ge=0, le=100)] | None = None
    allocation_fixed: Annotated[int, Field(strict=True, ge=0, le=MAX_UNITS)] | None = None
    discontinued: bool | None = None

    @model_validator(mode="after")
    def _meaningful(self) -> Self:
        if self.allocation_percent is not None and self.allocation_fixed is not None:
            raise ValueError("set allocation_percent or allocation_fixed, not both")
        if not self.model_fields_set - {"retailer_id", "as_of"}:
            raise ValueError("name at least one of bucket, allocation_percent, allocation_fixed, discontinued")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the sender named, with their values (None = clear)."""
        return {name: getattr(self, name) for name in sorted(self.model_fields_set - {"retailer_id", "as_of"})}


class PushMessage(Model):
    """Body of a push queue message. push_batch drops it when ``version`` is below the SKU's published_version
    (superseded) or at/below its confirmed_version (already in the catalog).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    retailer_id: RetailerId
    value: Annotated[int, Field(strict=True, ge=0)]
    version: Annotated[int, Field(strict=True, ge=1)]
    visibility: Visibility
    computed_at: AwareDatetime
    # Goes into the next call slot before routine rows (logic/push_priority.py); left out of the body when False.
    urgent: Annotated[bool, Field(strict=True)] = False
