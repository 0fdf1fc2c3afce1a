"""How long the catalog's recent batches took to process, one item in the control table per catalog.

verify_batch adds an observation per settled batch (logic/verify_timing.py says what one is and how the delays
follow from them); push_batch reads them for the delay of a batch's first status check. The item keeps the newest
``MAX_OBSERVATIONS``: a few hundred bytes, one read per use. Concurrent verify invocations add theirs by optimistic
concurrency, as the call budget does (dal/budget.py): read, add, write only if ``revision`` is still the one read,
otherwise read again; so no observation overwrites another.
"""

from __future__ import annotations

from typing import Any

from stocksync.dal.codec import decode, encode
from stocksync.dal.revisioned import put_if_revision
from stocksync.logic.backoff import conflict_tries
from stocksync.logic.verify_timing import MAX_OBSERVATIONS, Observation, first_check_delay, remember

_CONFLICT_RETRIES = 8


class ProcessingTimesContentionError(RuntimeError):
    """The item kept changing under us; the caller treats it as a transient failure."""


def _observation(raw: Any) -> Observation | None:
    """One stored observation, or None for an entry that is not one (an old or hand-edited item must not stop
    verification: it only costs that entry)."""
    try:
        return Observation(str(raw["handle"]), int(raw["lower_ms"]), int(raw["upper_ms"]), int(raw["at_ms"]))
    except (KeyError, TypeError, ValueError):
        return None


class DynamoProcessingTimes:
    """The processing-time observations of one catalog (``ProcessingTimes`` of logic/verification.py)."""

    def __init__(self, client: Any, table: str, *, catalog_id: str, limit: int = MAX_OBSERVATIONS) -> None:
        self._client = client
        self._table = table
        self._name = f"batch-processing#{catalog_id}"
        self._limit = limit

    def observations(self) -> tuple[Observation, ...]:
        """The newest observations, oldest first (an eventually consistent read: a second-old view is as good)."""
        return self._load(consistent=False)[0]

    def first_check_delay(self, default_seconds: int) -> int:
        """Seconds between an items_batch call and its first status check: the median observed processing time
        (5 to 900 s), or ``default_seconds`` (VerifyDelaySeconds) while no batch of the catalog was observed."""
        return first_check_delay(self.observations(), default_seconds)

    def record(self, observation: Observation) -> bool:
        """Add one settled batch's interval; False when its handle was recorded already (a redelivery)."""
        for _ in conflict_tries(_CONFLICT_RETRIES):
            observations, revision = self._load(consistent=True)
            kept = remember(observations, observation, limit=self._limit)
            if kept is None:
                return False
            if self._store(kept, revision):
                return True
        raise ProcessingTimesContentionError(f"{self._name}: {_CONFLICT_RETRIES} conflicting updates in a row")

    def _load(self, *, consistent: bool) -> tuple[tuple[Observation, ...], int]:
        answer = self._client.get_item(
            TableName=self._table, Key=encode({"name": self._name}), ConsistentRead=consistent
        )
        item = decode(answer.get("Item") or {})
        parsed = (_observation(raw) for raw in item.get("observations", ()))
        return tuple(observation for observation in parsed if observation is not None), int(item.get("revision", 0))

    def _store(self, observations: tuple[Observation, ...], revision: int) -> bool:
        item = {
            "name": self._name,
            "observations": [
                {"handle": o.handle, "lower_ms": o.lower_ms, "upper_ms": o.upper_ms, "at_ms": o.observed_at_ms}
                for o in observations
            ],
        }
        return put_if_revision(self._client, self._table, item, revision)
