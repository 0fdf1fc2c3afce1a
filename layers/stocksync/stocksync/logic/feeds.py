"""Catalog feed files for a hybrid catalog: static fields by feed, stock by feed only for the slow buckets.

A hybrid catalog serves each field from exactly one path (docs/feeds.md):

- the **replace feed** carries every product's static fields (title, price, link, ...) from the merchant's product
  master, and none of the volatile ones (the quantity fields and visibility): a replace feed that carried a quantity
  would overwrite, at every fetch, the values the real-time API pushed since;
- the **update feed** carries the volatile fields of the SKUs in the configured feed buckets (slow sellers), and
  only of those; push_batch never sends those SKUs through the API. So no product's stock has two paths.

An exported value counts as confirmed at export time (as a pushed one does when its batch finishes): recompute then
stops re-deciding it, and the platform applies it at its next fetch of the feed, overwriting its copy as an API
upload would.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Protocol

from stocksync import clock
from stocksync.errors import InvalidInputError
from stocksync.logic.pushing import Confirmations
from stocksync.models.push import BatchEntry
from stocksync.models.settings import CatalogField
from stocksync.models.sku import SkuState, Visibility

SOURCE_KEY = "source/products.csv"
REPLACE_FEED_KEY = "feeds/products_replace.csv"
UPDATE_FEED_KEY = "feeds/inventory_update.csv"
VOLATILE_FIELDS = frozenset({*(f.value for f in CatalogField), "visibility"})
ID_COLUMN = "id"


def replace_feed_columns(source_columns: Sequence[str] | None) -> list[str]:
    """The replace feed's columns: the source's, without the volatile ones; ``id`` must be among them."""
    columns = [name.strip() for name in source_columns or ()]
    if ID_COLUMN not in columns:
        raise InvalidInputError(f"{SOURCE_KEY}: header", f"no {ID_COLUMN!r} column (the retailer id); got {columns}")
    return [name for name in columns if name not in VOLATILE_FIELDS]


def replace_feed_rows(rows: Iterable[dict[str, str]], columns: Sequence[str]) -> Iterator[dict[str, str]]:
    """Each source row reduced to the replace feed's columns; rows without an id are skipped (and counted)."""
    for row in rows:
        cleaned = {name.strip(): value for name, value in row.items() if name is not None}
        if cleaned.get(ID_COLUMN, "").strip():
            yield {name: cleaned.get(name, "") for name in columns}


def feed_visibility(state: SkuState) -> Visibility:
    if state.published_visibility is not None:
        return state.published_visibility
    return Visibility.STAGING if state.discontinued else Visibility.PUBLISHED


def update_feed_row(state: SkuState, catalog_field: str) -> dict[str, str | int] | None:
    """The update feed's row for a feed-served SKU, or None while recompute has published nothing for it."""
    if state.published_value is None:
        return None
    return {ID_COLUMN: state.retailer_id, catalog_field: state.published_value, "visibility": feed_visibility(state)}


class FeedStore(Protocol):
    """Where the feeds live (an S3 bucket)."""

    def open_source(self, key: str) -> IO[str] | None:
        """The source object as text, or None when it does not exist."""
        ...

    def write(self, key: str, fill: Callable[[IO[str]], None]) -> None:
        """Write the object ``key`` with what ``fill`` writes to the text stream it is given."""
        ...


class BucketStates(Protocol):
    def bucket_states(
        self, bucket: str, *, page_size: int = ..., start_key: dict | None = ...
    ) -> Iterator[tuple[list[SkuState], dict | None]]: ...


@dataclass
class FeedReport:
    replace_rows: int = 0
    replace_written: bool = False
    update_rows: int = 0
    update_written: bool = False
    confirmed: int = 0
    skus_by_bucket: dict[str, int] = field(default_factory=dict)


class FeedExporter:
    def __init__(
        self,
        *,
        store: FeedStore,
        skus: BucketStates,
        confirmations: Confirmations,
        feed_buckets: Collection[str],
        catalog_field: str,
        now: Callable[[], datetime] = clock.now,
    ) -> None:
        self._store = store
        self._skus = skus
        self._confirmations = confirmations
        self._feed_buckets = sorted(feed_buckets)
        self._catalog_field = catalog_field
        self._now = now

    def export(self) -> FeedReport:
        report = FeedReport()
        self._export_replace(report)
        if self._feed_buckets:
            self._export_update(report)
        return report

    def _export_replace(self, report: FeedReport) -> None:
        source = self._store.open_source(SOURCE_KEY)
        if source is None:
            return
        with source:
            reader = csv.DictReader(source)
            columns = replace_feed_columns(reader.fieldnames)

            def fill(out: IO[str]) -> None:
                writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
                writer.writeheader()
                for row in replace_feed_rows(reader, columns):
                    writer.writerow(row)
                    report.replace_rows += 1

            self._store.write(REPLACE_FEED_KEY, fill)
        report.replace_written = True

    def _export_update(self, report: FeedReport) -> None:
        exported_at = self._now()
        to_confirm: list[BatchEntry] = []

        def fill(out: IO[str]) -> None:
            writer = csv.DictWriter(out, fieldnames=[ID_COLUMN, self._catalog_field, "visibility"], lineterminator="\n")
            writer.writeheader()
            for bucket in self._feed_buckets:
                report.skus_by_bucket[bucket] = 0
                for states, _resume in self._skus.bucket_states(bucket):
                    for state in states:
                        row = update_feed_row(state, self._catalog_field)
                        if row is None:
                            continue
                        writer.writerow(row)
                        report.update_rows += 1
                        report.skus_by_bucket[bucket] += 1
                        if state.published_version > state.confirmed_version:
                            to_confirm.append(_exported_entry(state, exported_at))

        self._store.write(UPDATE_FEED_KEY, fill)
        report.update_written = True
        # Only once the file is written: a value counts as delivered when the platform can fetch it.
        receipt = self._confirmations.confirm_pushes(to_confirm, accepted_at=exported_at, confirmed_at=exported_at)
        report.confirmed = len(receipt.confirmed) + len(receipt.stale_corrected)


def _exported_entry(state: SkuState, exported_at: datetime) -> BatchEntry:
    return BatchEntry(
        retailer_id=state.retailer_id,
        value=state.published_value or 0,
        version=state.published_version,
        visibility=feed_visibility(state),
        computed_at=state.published_at or exported_at,
    )
