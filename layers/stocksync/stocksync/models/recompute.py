"""Inputs of the stock recompute: SKU messages of the recompute queue, and bucket sweep requests."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, ConfigDict, Field, StrictBool

from stocksync.models.base import Model
from stocksync.models.orders import RetailerId


class RecomputeRequest(Model):
    """A recompute queue message: this SKU's inputs changed (orders, warehouse level, settings)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    retailer_id: RetailerId
    reason: str = ""


class SweepRequest(Model):
    """Sweep one bucket: the schedule's input (just the bucket), or a hand-over that resumes after a SKU.

    ``after`` is the last retailer id the previous part finished, ``started_at`` when the first part began and
    ``part`` how many parts ran before: a long sweep is one logical sweep in several invocations. ``run`` names that
    logical sweep (its first invocation) and holds the bucket's lease, so two sweeps of a bucket never overlap: the
    schedule's input has none (a new run starts), every hand-over carries it (the run goes on, if it still holds the
    bucket).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket: Annotated[str, Field(min_length=1, max_length=32)]
    after: RetailerId | None = None
    started_at: AwareDatetime | None = None
    part: Annotated[int, Field(ge=0)] = 0
    run: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class CatalogReadRequest(Model):
    """A catalog read queue message: read this SKU back from the catalog (recompute found it ambiguous)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    retailer_id: RetailerId


class AuditRequest(Model):
    """What starts a catalog audit run: the schedule's input or an operator's invoke. Other fields (the scheduler's
    scheduled time and execution id) are only there for the log of the event."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    dry_run: StrictBool = False
