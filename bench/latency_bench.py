"""Benchmark: change -> confirmed latency of paced pushes, at sustained change rates, against the platform's limit.

    .venv/bin/python bench/latency_bench.py            # 60, 360, 3,600, 36,000 changes/h for 15 simulated minutes
                                                       # each through the real handlers; the pacing model at 300,000/h
                                                       # for one simulated hour
    .venv/bin/python bench/latency_bench.py --quick    # 60 and 3,600/h for 3 minutes; the model for 10 (make test)
    .venv/bin/python bench/latency_bench.py --json     # exactly one JSON object on stdout

**Through the real handlers** (one child process per rate, run two at a time): moto server with template.yaml
deployed at its defaults (BatchCallsPerHour 90, PushBurstCalls 3, PushBatchingWindowSeconds 10, PushBatchSize 5,000,
VerifyDelaySeconds 60) and the Commerce Platform simulator enforcing its 100 items_batch calls an hour (80014) and
its catalog-management limit (80009, the simulator's default 20,000 an hour: Meta publishes none), with a batch
processing delay of 20 s (applied halfway). A change is one unit sold of one SKU on another channel: the warehouse
level drops by one, so the value recompute publishes (A = the level: every SKU holds 50,000 units, far from any
threshold) changes with every change. The changes arrive evenly over the span; which SKU changes is drawn (seeded)
from a Zipf distribution over a catalog of 2,000 SKUs (500 in --quick), so a few SKUs change many times a minute at
the high rates while most change rarely. The warehouse publishes once a second, on the bus, one "Warehouse Stock
Levels" event with the newest level of every SKU that changed during that second (the latency is counted from the
change itself, so that second is in it). The SKU records start published and confirmed at 50,000 (as after an
earlier push), so the measured run starts with a fresh call budget and no backlog.

Everything then runs as deployed, on the simulator's clock: warehouse_events -> recompute_stock -> push_batch ->
verify_batch, every message delivered when it is due (moto's SQS reads the simulator's clock here, so a delay of
40 s is 40 simulated seconds however long the host takes). Event source mappings with a batching window
(push_batch: PushBatchingWindowSeconds = 10 s, recompute_stock: 5 s, both read from template.yaml) are modelled as
Lambda's poller behaves: the window opens when the poller first sees a deliverable message and the function is
invoked when it closes or when BatchSize messages are waiting; the rows push_batch sends back to wait for their slot
open a new window when they become visible again. Consumers without a window are invoked as soon as a message is due.
Each invocation takes 0.1 simulated seconds; invocations run one at a time (push_batch's MaximumConcurrency of 2
and its lease are not exercised). Schedules (sweeps, polls, audit) do not run: only changes flow.

Latency of a change: from the change to the moment verify_batch confirms (``SkuTable.confirm_pushes``) a value of
that SKU at or below the level the change produced (its own value or a newer one: levels only fall). After the last
change the pipeline runs on until every queue is empty (at most an hour). ``calls_per_hour``: items_batch calls the
simulator accepted during the span, scaled to an hour; ``throttled``: the 80014 and 80009 answers it gave.

**The pacing model** (pure code, no AWS): the same flow as a discrete-event simulation with the same batching windows
and invocation time, the real ``stocksync.logic.call_pacing.grant_slots`` (PacerState, Pace from the template's
parameters), the real ordering (``stocksync.logic.pushing.send_order``) and requeue delay (``queue_delay``), and a
waiting set where a SKU's newer version replaces the older one still waiting (push_batch's coalesce and its
superseded check), up to 5,000 rows a call. Processing + verification is modelled as a constant: the median
call -> confirmation time the real-handler runs of this same invocation measured (60 s when none ran). The rate
"300000" (a catalog of 100,000 SKUs, Zipf) is this model, marked ``"model": true``.

**Baseline** (measured in the same run): the same loads through the old, unpaced rule, as a model: the sliding window
alone (``stocksync.logic.batch_budget.grant``, 90 calls in any trailing hour, a call whenever one is left) with the old
defaults (PushBatchingWindowSeconds 30, PushBatchSize 3,000), over the same span from the same fresh budget. Because a
15-minute span from a fresh budget never exhausts the hour, each rate also reports both rules over a steady hour
(the second hour of two) under ``steady_hour``: that is where the sliding window stalls.

Target at every rate: p95 <= 2 * slot_seconds + 60 and no throttling answer. A full run exits non-zero when a rate
misses it. In --quick the spans are too short for percentiles to mean much (a few dozen changes at 60/h): it reports
them, and fails only on a throttling answer or a broken run (changes left unconfirmed, a dead letter).

Peak memory: each real-handler rate runs in a process of its own holding moto, the simulator and every handler.
``peak_rss_mb`` is that process's VmHWM; ``handlers_rss_mb`` is VmHWM minus the process's resident size once moto
had the stack deployed and the records seeded, before any handler ran: an upper bound of what the handlers added
(moto's own growth, the queued messages and stored batches, is in it too); a 256 MB Lambda must fit it.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import heapq
import json
import math
import os
import random
import sys
import time
import warnings
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import finish, in_children, peak_memory_mb, resident_memory_mb, seed_table  # noqa: E402

RATES = (60, 360, 3_600, 36_000)
QUICK_RATES = (60, 3_600)
MODEL_RATE = 300_000
TOKEN, APP_SECRET = "bench-token", "bench-app-secret"
STOCK = 50_000  # units per SKU: far above every bucket's threshold, so each sale changes the published value
PROCESSING_SECONDS = 20  # the simulator's batch processing delay (applied halfway through)
INVOCATION_SECONDS = 0.1  # simulated time one invocation takes
WAREHOUSE_EVERY_SECONDS = 1  # the warehouse publishes the levels changed in each second at its end
TAIL_SECONDS = 3600  # after the last change, how long the pipeline may run on to settle everything
DEFAULT_PV_SECONDS = 60.0  # the model's processing + verify time when no real-handler run measured one
OLD_PUSH_WINDOW_SECONDS = 10 * 3  # the old PushBatchingWindowSeconds default (30)
OLD_PUSH_BATCH_SIZE = 3000  # the old PushBatchSize default
PREFERRED_SIZE = 3000  # PushRequestsPerCall's default
PLATFORM_CALLS_PER_HOUR = 100  # the simulator's items_batch limit (the model counts calls beyond it as throttled)
THROTTLE_CODES = (80014, 80009)


# --------------------------------------------------------------------------------------------------------- the load


def zipf_changes(rate: int, seconds: float, skus: int, seed: int, start: float = 0.0) -> list[tuple[float, int]]:
    """(moment, SKU index) of ``rate`` changes an hour, evenly spaced from ``start`` over ``seconds``; the SKU drawn
    with probability proportional to 1 / (rank + 1)."""
    rng = random.Random(seed)
    cumulative, total = [], 0.0
    for rank in range(skus):
        total += 1.0 / (rank + 1)
        cumulative.append(total)
    count = round(rate * seconds / 3600)
    gap = 3600 / rate
    return [
        (start + index * gap, min(skus - 1, bisect.bisect_left(cumulative, rng.random() * total)))
        for index in range(count)
    ]


def percentiles(samples: list[float]) -> dict[str, float | None]:
    """p50/p95/p99 by nearest rank (None without samples)."""
    if not samples:
        return {"p50_s": None, "p95_s": None, "p99_s": None}
    ordered = sorted(samples)

    def rank(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))], 1)

    return {"p50_s": rank(0.50), "p95_s": rank(0.95), "p99_s": rank(0.99)}


@dataclass
class BatchingWindow:
    """A Lambda SQS poller's batching window: opens when a deliverable message is first seen, invokes when it has
    lasted ``seconds`` or ``batch_size`` messages are waiting (``seconds`` 0: at once)."""

    seconds: float
    batch_size: int
    opened_at: float | None = None

    def due(self, ready: int, now: float) -> bool:
        if ready == 0:
            self.opened_at = None
            return False
        if self.opened_at is None:
            self.opened_at = now
        return ready >= self.batch_size or now >= self.opened_at + self.seconds - 1e-9

    def delivered(self, ready_left: int, now: float) -> None:
        self.opened_at = now if ready_left else None

    def closes_at(self) -> float | None:
        return None if self.opened_at is None else self.opened_at + self.seconds


@dataclass(frozen=True)
class Deployment:
    """What the template deploys by default, as this benchmark uses it."""

    calls_per_hour: int
    burst: int
    push_window: float
    push_batch_size: int
    recompute_window: float
    recompute_batch_size: int
    windows: dict[str, float]  # function folder -> MaximumBatchingWindowInSeconds

    @property
    def slot_seconds(self) -> float:
        from stocksync.logic.call_pacing import Pace

        return Pace(self.calls_per_hour, self.burst).slot_seconds


def read_deployment() -> Deployment:
    from stocksync_dev.local.template import load_template, parameter_values

    template = load_template()
    parameters = parameter_values(template, {"CatalogId": "1001", "CommerceMerchantSettingsId": "2001"})
    windows: dict[str, float] = {}
    sizes: dict[str, int] = {}
    for resource in template["Resources"].values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource.get("Properties", {})
        folder = Path(str(properties.get("CodeUri", "")).rstrip("/")).name
        for event in (properties.get("Events") or {}).values():
            if event.get("Type") != "SQS":
                continue
            spec = event.get("Properties", {})
            windows[folder] = float(_resolved(spec.get("MaximumBatchingWindowInSeconds", 0), parameters))
            sizes[folder] = int(_resolved(spec.get("BatchSize", 10), parameters))
    return Deployment(
        calls_per_hour=int(parameters["BatchCallsPerHour"]),
        burst=min(int(parameters["PushBurstCalls"]), int(parameters["BatchCallsPerHour"])),
        push_window=windows["push_batch"],
        push_batch_size=sizes["push_batch"],
        recompute_window=windows["recompute_stock"],
        recompute_batch_size=sizes["recompute_stock"],
        windows=windows,
    )


def _resolved(value: Any, parameters: dict[str, str]) -> Any:
    if isinstance(value, dict) and "Ref" in value:
        return parameters[value["Ref"]]
    return value


# ------------------------------------------------------------------------------------------- the real handlers


class SimClock:
    """The simulator's clock as seconds since the run began; moto's SQS reads it too (``now_ms``)."""

    def __init__(self, sim: Any) -> None:
        self._sim = sim
        self.start = sim.now()
        self.now = 0.0
        self.now_ms = self.start.timestamp() * 1000

    def advance_to(self, moment: float) -> None:
        if moment > self.now:
            self._sim.advance(moment - self.now)
            self.now = moment
            self.now_ms = self._sim.now().timestamp() * 1000

    def seconds(self, moment: datetime) -> float:
        return (moment - self.start).total_seconds()


def _count_graph_answers(sim: Any, clock: SimClock) -> dict[str, Any]:
    """Wrap the simulator's request handler: accepted items_batch call moments, and the throttle answers by code."""
    counts: dict[str, Any] = {"accepted_calls": [], "throttled": defaultdict(int), "errors": defaultdict(int)}
    graph = sim._graph_api
    handle = graph.handle

    def counted(method: str, target: str, **kwargs: Any) -> Any:
        response = handle(method, target, **kwargs)
        error = response.body.get("error") if isinstance(response.body, dict) else None
        if error:
            code = error.get("code")
            counts["errors"][str(code)] += 1
            if code in THROTTLE_CODES:
                counts["throttled"][str(code)] += 1
        elif method == "POST" and target.split("?", maxsplit=1)[0].endswith("/items_batch"):
            counts["accepted_calls"].append(clock.now)
        return response

    graph.handle = counted
    return counts


def _record_confirmations(clock: SimClock) -> dict[str, list[tuple[float, int, float]]]:
    """Wrap ``SkuTable.confirm_pushes``: per SKU, (confirmed at, value, sent at) of every row that landed."""
    from stocksync.dal.sku_table import SkuTable

    landed: dict[str, list[tuple[float, int, float]]] = defaultdict(list)
    confirm = SkuTable.confirm_pushes

    def recorded(self: Any, entries: Any, *, accepted_at: datetime, confirmed_at: datetime, sent_at: Any = None) -> Any:
        receipt = confirm(self, entries, accepted_at=accepted_at, confirmed_at=confirmed_at, sent_at=sent_at)
        ok = set(receipt.confirmed) | set(receipt.re_anchored)
        at, sent = clock.seconds(confirmed_at), clock.seconds(sent_at or accepted_at)
        for entry in entries:
            if entry.retailer_id in ok:
                landed[entry.retailer_id].append((at, entry.value, sent))
        return receipt

    SkuTable.confirm_pushes = recorded  # type: ignore[method-assign]
    return landed


def _seed_records(local: Any, sim: Any, skus: list[str], confirmed_at: datetime) -> None:
    """Every SKU at STOCK in the warehouse, published and confirmed at it (as after an earlier push)."""
    at_ms = int(confirmed_at.timestamp() * 1000)
    records = []
    for rid in skus:
        sim.add_product(rid, quantity=STOCK)
        records.append(
            {
                "retailer_id": rid,
                "record": "state",
                "warehouse_level": STOCK,
                "warehouse_as_of_ms": at_ms - 120_000,
                "published_value": STOCK,
                "published_visibility": "published",
                "published_version": 1,
                "published_at": (confirmed_at - timedelta(seconds=120)).isoformat(),
                "published_platform_units": 0,
                "confirmed_value": STOCK,
                "confirmed_visibility": "published",
                "confirmed_version": 1,
                "confirmed_at": confirmed_at.isoformat(),
                "confirmed_accepted_ms": at_ms - 60_000,
                "catalog_value": STOCK,
                "catalog_visibility": "published",
                "catalog_from_ms": at_ms - 60_000,
                "catalog_to_ms": at_ms,
                "catalog_basis": "push",
            }
        )
    seed_table(local, os.environ["SKU_TABLE"], records)


def run_handlers(env: dict[str, str], rate: int, seconds: float, catalog: int, seed: int) -> dict[str, Any]:
    """Child process: ``rate`` changes an hour for ``seconds`` through the real handlers; latencies and counts."""
    os.environ.update(env)
    # Powertools still prints its metrics once 100 values of one metric piled up (disabled metrics are never
    # flushed): stdout belongs to the parent's report (--json prints one object).
    warnings.filterwarnings("ignore", "No application metrics to publish", UserWarning)
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
        return _run_handlers(rate, seconds, catalog, seed, env)


def _run_handlers(rate: int, seconds: float, catalog: int, seed: int, env: dict[str, str]) -> dict[str, Any]:
    import moto.sqs.models as moto_sqs
    from moto.backends import get_backend

    from stocksync import clock as product_clock
    from stocksync_dev.cli.pipeline import LocalPipeline
    from stocksync_dev.local.aws import LocalAws
    from stocksync_dev.simulator import CommercePlatformSimulator

    deployment = read_deployment()
    started = time.perf_counter()
    begin = datetime.now(UTC).replace(second=0, microsecond=0)
    with (
        LocalAws() as local,
        CommercePlatformSimulator(
            access_token=TOKEN,
            app_secret=APP_SECRET,
            start=begin,
            batch_processing_delay=timedelta(seconds=PROCESSING_SECONDS),
            batch_apply_fraction=0.5,
        ) as sim,
    ):
        # The template's log level and metrics would print on stdout, which --json keeps for its one object.
        os.environ.update(local.function_environment({"STOCKSYNC_GRAPH_BASE_URL": sim.url, **env}))
        local.put_graph_credentials(TOKEN, APP_SECRET)
        clock = SimClock(sim)
        product_clock.use(sim.now)
        real_sqs_clock = moto_sqs.unix_time_millis
        moto_sqs.unix_time_millis = lambda: clock.now_ms  # SQS delays and visibility in simulated time
        try:
            skus = [f"SKU-{index:05d}" for index in range(catalog)]
            _seed_records(local, sim, skus, begin - timedelta(hours=2))
            graph = _count_graph_answers(sim, clock)
            landed = _record_confirmations(clock)
            setup_seconds = time.perf_counter() - started
            stack_rss = resident_memory_mb()
            pipeline = LocalPipeline(local, advance_clock=sim.advance)
            account = local.client("sts").get_caller_identity()["Account"]
            backend = get_backend("sqs")[account][local.region]
            changes = zipf_changes(rate, seconds, catalog, seed)
            run = _HandlerRun(pipeline, backend, clock, deployment=deployment, local=local, sim=sim)
            levels = run.play(changes, skus, seconds)
        finally:
            moto_sqs.unix_time_millis = real_sqs_clock
            product_clock.use(None)
        dead = _dead_letter_count(local)
    latencies, sent_latencies, call_to_confirm, unconfirmed = _latencies(levels, landed)
    span_calls = [moment for moment in graph["accepted_calls"] if moment < seconds]
    return {
        "rate": rate,
        "changes": len(changes),
        "latencies": latencies,
        "sent_latencies": sent_latencies,
        "call_to_confirm": call_to_confirm,
        "unconfirmed": unconfirmed,
        "calls": len(graph["accepted_calls"]),
        "calls_in_span": len(span_calls),
        "throttled": dict(graph["throttled"]),
        "graph_errors": dict(graph["errors"]),
        "invocations": dict(pipeline.invocations),
        "settled_after_s": round(clock.now, 1),
        "dead_letters": dead,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "setup_seconds": round(setup_seconds, 1),
        "stack_rss_mb": stack_rss,
        "peak_rss_mb": peak_memory_mb(),
    }


def _dead_letter_count(local: Any) -> int:
    sqs = local.client("sqs")
    total = 0
    for logical_id, (kind, url) in local.resources.items():
        if kind == "AWS::SQS::Queue" and "DeadLetter" in logical_id:
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
            total += int(attributes["Attributes"]["ApproximateNumberOfMessages"])
    return total


class _HandlerRun:
    """The event loop: the warehouse's events when due, every consumer delivered as its poller would, time moved to
    the next thing due."""

    def __init__(self, pipeline: Any, backend: Any, clock: SimClock, *, deployment: Deployment, local: Any, sim: Any):
        self._pipeline = pipeline
        self._clock = clock
        self._events = local.client("events")
        self._bus = os.environ["EVENT_BUS_NAME"]
        self._sim = sim
        self._consumers = [
            (
                consumer,
                backend.queues[consumer.queue_url.rsplit("/", 1)[-1]],
                BatchingWindow(deployment.windows.get(consumer.function, 0.0), consumer.batch_size),
            )
            for consumer in pipeline.consumers
        ]

    def play(self, changes: list[tuple[float, int]], skus: list[str], seconds: float) -> list[tuple[float, int, int]]:
        """Run the changes and then the pipeline until every queue is empty; (moment, SKU, level) of each change."""
        levels = [STOCK] * len(skus)
        made: list[tuple[float, int, int]] = []
        pending: dict[int, int] = {}  # SKU -> newest level not yet published by the warehouse
        index = 0
        publish_at = WAREHOUSE_EVERY_SECONDS
        deadline = seconds + TAIL_SECONDS
        clock = self._clock
        while True:
            while index < len(changes) and changes[index][0] <= clock.now:
                moment, sku = changes[index]
                levels[sku] -= 1
                pending[sku] = levels[sku]
                made.append((moment, sku, levels[sku]))
                index += 1
            if pending and clock.now >= publish_at - 1e-9:
                self._publish(pending, skus)
                pending = {}
            while clock.now >= publish_at - 1e-9:
                publish_at += WAREHOUSE_EVERY_SECONDS
            if self._deliver_one():
                continue
            wakes = [self._next_due(queue, window) for _consumer, queue, window in self._consumers]
            if index < len(changes):
                wakes.append(changes[index][0])
            if pending or index < len(changes):
                wakes.append(publish_at)
            upcoming = [moment for moment in wakes if moment is not None]
            if not upcoming or clock.now > deadline:
                return made
            # A message moto does not hand out yet although it looks due (a millisecond's rounding): step past it.
            clock.advance_to(max(clock.now + 0.001, min(upcoming)))

    def _publish(self, pending: dict[int, int], skus: list[str]) -> None:
        from stocksync_dev.local.aws import BUS_SOURCES  # dev-only, imported where used

        as_of = self._sim.now().isoformat()
        levels = [{"retailer_id": skus[sku], "level": level, "as_of": as_of} for sku, level in sorted(pending.items())]
        for start in range(0, len(levels), 200):  # well under EventBridge's 256 KB an entry
            self._events.put_events(
                Entries=[
                    {
                        "EventBusName": self._bus,
                        "Source": BUS_SOURCES["Warehouse Stock Levels"],
                        "DetailType": "Warehouse Stock Levels",
                        "Detail": json.dumps({"levels": levels[start : start + 200]}),
                    }
                ]
            )

    def _ready(self, queue: Any) -> int:
        now_ms = self._clock.now_ms
        return sum(1 for message in queue._messages if message.visible_at < now_ms and message.delayed_until <= now_ms)

    def _deliver_one(self) -> bool:
        """One batch to the first consumer whose poller would invoke it now (and the invocation's time)."""
        now = self._clock.now
        for consumer, queue, window in self._consumers:
            ready = self._ready(queue)
            if not window.due(ready, now):
                continue
            if not self._pipeline._deliver(consumer):
                window.delivered(0, now)
                continue
            self._clock.advance_to(now + INVOCATION_SECONDS)
            window.delivered(self._ready(queue), self._clock.now)
            return True
        return False

    def _next_due(self, queue: Any, window: BatchingWindow) -> float | None:
        closes = window.closes_at()
        if closes is not None:
            return max(closes, self._clock.now)
        if not queue._messages:
            return None
        start_ms = self._clock.now_ms - self._clock.now * 1000
        due_ms = min(max(message.delayed_until, message.visible_at + 1) for message in queue._messages)
        return max(self._clock.now, (due_ms - start_ms) / 1000)


def _latencies(
    made: list[tuple[float, int, int]], landed: dict[str, list[tuple[float, int, float]]]
) -> tuple[list[float], list[float], list[float], int]:
    """Per change: the first confirmation of its SKU at or below the level it produced (levels only fall)."""
    by_sku: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for moment, sku, level in made:
        by_sku[sku].append((moment, level))
    latencies, sent, unconfirmed = [], [], 0
    call_to_confirm = [at - sent_at for rows in landed.values() for at, _value, sent_at in rows]
    for sku, changes in by_sku.items():
        rows = sorted(landed.get(f"SKU-{sku:05d}", []))
        for moment, level in changes:
            hit = next(((at, sent_at) for at, value, sent_at in rows if value <= level and at >= moment), None)
            if hit is None:
                unconfirmed += 1
                continue
            latencies.append(hit[0] - moment)
            sent.append(hit[1] - moment)
    return latencies, sent, call_to_confirm, unconfirmed


# ------------------------------------------------------------------------------------------------ the model


@dataclass(slots=True)
class _ModelRow:
    """A push message as push_batch orders it (``send_order`` reads ``message.urgent`` and ``.computed_at``)."""

    sku: int
    version: int
    computed_at: float
    urgent: bool = False

    @property
    def message(self) -> _ModelRow:
        return self


@dataclass
class _ModelQueue:
    window: BatchingWindow
    heap: list[tuple[float, int, Any]] = field(default_factory=list)
    ready: deque[Any] = field(default_factory=deque)
    sequence: int = 0

    def add(self, due: float, item: Any) -> None:
        self.sequence += 1
        heapq.heappush(self.heap, (due, self.sequence, item))

    def refresh(self, now: float) -> None:
        while self.heap and self.heap[0][0] <= now + 1e-9:
            self.ready.append(heapq.heappop(self.heap)[2])

    def take(self, now: float) -> list[Any] | None:
        self.refresh(now)
        if not self.window.due(len(self.ready), now):
            return None
        batch = [self.ready.popleft() for _ in range(min(len(self.ready), self.window.batch_size))]
        return batch

    def next_due(self, now: float) -> float | None:
        closes = self.window.closes_at()
        if closes is not None:
            return max(closes, now)
        return max(self.heap[0][0], now) if self.heap else None


def run_model(
    rate: int,
    seconds: float,
    catalog: int,
    seed: int,
    *,
    paced: bool,
    deployment: Deployment,
    pv_seconds: float,
    warmup: float = 0.0,
) -> dict[str, Any]:
    """The push path as a discrete-event model (see the module doc); changes in [warmup, warmup + seconds) are
    measured. ``paced``: call_pacing.grant_slots at the deployment's defaults; otherwise the old sliding window."""
    started = time.perf_counter()
    model = _PushModel(catalog, paced=paced, deployment=deployment, pv_seconds=pv_seconds)
    changes = zipf_changes(rate, warmup + seconds, catalog, seed)
    model.run(changes, measured=(warmup, warmup + seconds))
    measured = sum(1 for moment, _sku in changes if warmup <= moment < warmup + seconds)
    span_calls = sum(1 for moment in model.calls if warmup <= moment < warmup + seconds)
    return {
        **percentiles(model.latencies),
        "calls_per_hour": round(span_calls * 3600 / seconds),
        "throttled": model.throttled,
        "changes": measured,
        "unconfirmed": measured - len(model.latencies),
        "model_seconds": round(time.perf_counter() - started, 2),
    }


class _PushModel:
    """warehouse (one publication a second) -> recompute (its batching window) -> push (its window, the pacer or the
    old sliding window, the requeue of what no call carries) -> confirmed a constant ``pv_seconds`` after the call."""

    def __init__(self, catalog: int, *, paced: bool, deployment: Deployment, pv_seconds: float) -> None:
        from stocksync.logic.batch_budget import CallWindow
        from stocksync.logic.call_pacing import Pace, PacerState

        self._paced = paced
        self._deployment = deployment
        self._pv = pv_seconds
        self._pace = Pace(deployment.calls_per_hour, deployment.burst)
        self._pacer = PacerState()
        self._window = CallWindow()
        push_window = deployment.push_window if paced else OLD_PUSH_WINDOW_SECONDS
        push_size = deployment.push_batch_size if paced else OLD_PUSH_BATCH_SIZE
        self._recompute = _ModelQueue(BatchingWindow(deployment.recompute_window, deployment.recompute_batch_size))
        self._push = _ModelQueue(BatchingWindow(push_window, push_size))
        self._changed = [0] * catalog  # changes made to each SKU so far (its "level version")
        self._stored = [0] * catalog  # the level version warehouse_events stored
        self._published = [0] * catalog  # the level version recompute last published
        self._version = [0] * catalog  # the newest push version of each SKU
        self._version_level: dict[tuple[int, int], int] = {}
        self._waiting: defaultdict[int, deque[tuple[float, int]]] = defaultdict(deque)  # changes not sent yet
        self._unstored: dict[int, int] = {}
        self.now = 0.0
        self._measured = (0.0, 0.0)
        self.latencies: list[float] = []
        self.calls: list[float] = []
        self.throttled = 0

    def run(self, changes: list[tuple[float, int]], measured: tuple[float, float]) -> None:
        self._measured = measured
        index, publish_at = 0, float(WAREHOUSE_EVERY_SECONDS)
        while True:
            while index < len(changes) and changes[index][0] <= self.now + 1e-9:
                moment, sku = changes[index]
                self._changed[sku] += 1
                self._unstored[sku] = self._changed[sku]
                self._waiting[sku].append((moment, self._changed[sku]))
                index += 1
            if self._unstored and self.now >= publish_at - 1e-9:
                self._store_levels()
            while self.now >= publish_at - 1e-9:
                publish_at += WAREHOUSE_EVERY_SECONDS
            if self._invoke(self._recompute, self._recompute_batch) or self._invoke(self._push, self._push_batch):
                continue
            wakes = [self._recompute.next_due(self.now), self._push.next_due(self.now)]
            if index < len(changes):
                wakes += [changes[index][0], publish_at]
            elif self._unstored:
                wakes.append(publish_at)
            upcoming = [moment for moment in wakes if moment is not None]
            if not upcoming:
                return
            self.now = max(self.now, min(upcoming))

    def _store_levels(self) -> None:
        """warehouse_events: one invocation stores the levels and asks recompute for each SKU."""
        for sku, level_version in self._unstored.items():
            self._stored[sku] = level_version
            self._recompute.add(self.now, sku)
        self._unstored = {}
        self.now += INVOCATION_SECONDS

    def _invoke(self, queue: _ModelQueue, handler: Callable[[list[Any]], None]) -> bool:
        batch = queue.take(self.now)
        if batch is None:
            return False
        handler(batch)
        self.now += INVOCATION_SECONDS
        queue.refresh(self.now)
        queue.window.delivered(len(queue.ready), self.now)
        return True

    def _recompute_batch(self, batch: list[int]) -> None:
        """recompute_stock: one new push version per SKU whose stored level differs from the one published."""
        for sku in dict.fromkeys(batch):
            if self._stored[sku] > self._published[sku]:
                self._published[sku] = self._stored[sku]
                self._version[sku] += 1
                self._version_level[(sku, self._version[sku])] = self._stored[sku]
                self._push.add(self.now, _ModelRow(sku, self._version[sku], self.now))

    def _push_batch(self, batch: list[_ModelRow]) -> None:
        """push_batch: the newest still-needed version per SKU, in send order, into the calls granted now; the rest
        back to the queue until the next slot (``queue_delay``, as push_batch requeues)."""
        from stocksync.logic.batch_budget import grant
        from stocksync.logic.call_pacing import grant_slots
        from stocksync.logic.pushing import queue_delay, send_order

        newest: dict[int, _ModelRow] = {}
        for row in batch:
            if row.version >= self._version[row.sku] and (
                row.sku not in newest or row.version > newest[row.sku].version
            ):
                newest[row.sku] = row
        rows = send_order(newest.values())  # type: ignore[arg-type]
        now_ms = int(self.now * 1000)
        if self._paced:
            granted, self._pacer = grant_slots(
                self._pacer,
                len(rows),
                pace=self._pace,
                preferred_size=3000,
                holder="m",
                lease_ms=900_000,
                now_ms=now_ms,
            )
            self._pacer = self._pacer.released("model")
        else:
            calls_per_hour = self._deployment.calls_per_hour
            granted = grant(
                self._window, len(rows), calls_per_hour=calls_per_hour, preferred_size=PREFERRED_SIZE, now_ms=now_ms
            )
            self._window = self._window.with_calls(granted.calls, now_ms)
        sent = rows[: granted.capacity]
        for _ in range(math.ceil(len(sent) / granted.size)):
            if sum(1 for moment in self.calls if moment > self.now - 3600) >= PLATFORM_CALLS_PER_HOUR:
                self.throttled += 1
            self.calls.append(self.now)
        start, end = self._measured
        for row in sent:
            level_version = self._version_level[(row.sku, row.version)]
            waiting = self._waiting[row.sku]
            while waiting and waiting[0][1] <= level_version:
                moment, _level_version = waiting.popleft()
                if start <= moment < end:
                    self.latencies.append(self.now + self._pv - moment)
        for row in rows[granted.capacity :]:
            self._push.add(self.now + queue_delay(granted.retry_after_seconds), row)


# ------------------------------------------------------------------------------------------------------- main


def _entry(result: dict[str, Any], span: float) -> dict[str, Any]:
    throttled = sum(result["throttled"].values())
    return {
        **percentiles(result["latencies"]),
        "calls_per_hour": round(result["calls_in_span"] * 3600 / span),
        "throttled": throttled,
        "changes": result["changes"],
        "unconfirmed": result["unconfirmed"],
        "change_to_sent": percentiles(result["sent_latencies"]),
        "call_to_confirm_p50_s": percentiles(result["call_to_confirm"])["p50_s"],
        "invocations": result["invocations"],
        "dead_letters": result["dead_letters"],
        "wall_seconds": result["wall_seconds"],
        "peak_rss_mb": round(result["peak_rss_mb"], 1),
        "handlers_rss_mb": round(result["peak_rss_mb"] - result["stack_rss_mb"], 1),
    }


def _strip(model: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in model.items() if key != "model_seconds"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="60 and 3,600/h for 3 minutes; the model for 10")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object")
    parser.add_argument("--jobs", type=int, default=2, help="real-handler rates run at once (default 2)")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    rates = QUICK_RATES if args.quick else RATES
    span = 180.0 if args.quick else 900.0
    model_span = 600.0 if args.quick else 3600.0
    catalog = 500 if args.quick else 2000
    model_catalog = 100_000
    env = {
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_DISABLED": "1",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
    }
    os.environ.update(env)
    started = time.perf_counter()
    deployment = read_deployment()
    slot = deployment.slot_seconds
    target = 2 * slot + 60
    order = sorted(rates, reverse=True)  # the longest first, so two at a time finish together
    results = in_children(run_handlers, [(env, rate, span, catalog, args.seed) for rate in order], args.jobs)
    real = {result["rate"]: result for result in results}
    call_to_confirm = [sample for result in results for sample in result["call_to_confirm"]]
    pv = percentiles(call_to_confirm)["p50_s"] or DEFAULT_PV_SECONDS

    def model(rate: int, seconds: float, skus: int, *, paced: bool, warmup: float = 0.0) -> dict[str, Any]:
        return run_model(
            rate, seconds, skus, args.seed, paced=paced, deployment=deployment, pv_seconds=pv, warmup=warmup
        )

    report: dict[str, Any] = {}
    problems: list[str] = []
    for rate in rates:
        entry = _entry(real[rate], span)
        entry["baseline"] = _strip(model(rate, span, catalog, paced=False))
        entry["paced_model"] = _strip(model(rate, span, catalog, paced=True))
        entry["steady_hour"] = {
            "paced_model": _strip(model(rate, 3600, catalog, paced=True, warmup=3600)),
            "baseline": _strip(model(rate, 3600, catalog, paced=False, warmup=3600)),
        }
        report[str(rate)] = entry
    model_started = time.perf_counter()
    paced_300k = model(MODEL_RATE, model_span, model_catalog, paced=True)
    report[str(MODEL_RATE)] = {
        **_strip(paced_300k),
        "model": True,
        "model_wall_seconds": round(time.perf_counter() - model_started, 1),
        "baseline": _strip(model(MODEL_RATE, model_span, model_catalog, paced=False)),
    }
    for rate, entry in report.items():
        p95 = entry["p95_s"]
        entry["meets_target"] = p95 is not None and p95 <= target and entry["throttled"] == 0
        if entry["throttled"]:
            problems.append(f"rate {rate}/h: {entry['throttled']} throttling answers (80014/80009)")
        if entry.get("unconfirmed"):
            problems.append(f"rate {rate}/h: {entry['unconfirmed']} changes never confirmed (broken run)")
        if entry.get("dead_letters"):
            problems.append(f"rate {rate}/h: {entry['dead_letters']} dead letters")
        if not args.quick and not entry["meets_target"] and p95 is not None and p95 > target:
            problems.append(f"rate {rate}/h: p95 {p95} s misses the target {target:.1f} s")
    for rate in rates:
        if real[rate]["peak_rss_mb"] - real[rate]["stack_rss_mb"] > 256:
            problems.append(f"rate {rate}/h: the handlers added more than 256 MB (an upper bound: moto's growth too)")
    result = {
        "slot_seconds": slot,
        "target_p95_s": round(target, 1),
        "processing_seconds": PROCESSING_SECONDS,
        "model_processing_and_verify_s": pv,
        "span_s": span,
        "model_span_s": model_span,
        "catalog_skus": catalog,
        "quick": args.quick,
        "rates": report,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    if args.json:
        return finish(result, problems, as_json=True)
    _print(result, target)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


def _print(result: dict[str, Any], target: float) -> None:
    print(
        f"slot {result['slot_seconds']} s, target p95 <= {target:.1f} s and 0 throttled; "
        f"simulator processing {result['processing_seconds']} s; model processing+verify "
        f"{result['model_processing_and_verify_s']} s; span {result['span_s']:.0f} s "
        f"(model 300000/h: {result['model_span_s']:.0f} s); catalog {result['catalog_skus']} SKUs"
    )
    header = f"{'rate/h':>8} {'changes':>7} {'p50':>7} {'p95':>7} {'p99':>7} {'calls/h':>7} {'thr':>3}  target"
    print(header)
    for rate, entry in result["rates"].items():
        kind = " (model)" if entry.get("model") else ""
        verdict = "meets" if entry["meets_target"] else "MISSES"
        print(
            f"{rate:>8} {entry['changes']:>7} {_s(entry['p50_s'])} {_s(entry['p95_s'])} {_s(entry['p99_s'])} "
            f"{entry['calls_per_hour']:>7} {entry['throttled']:>3}  {verdict}{kind}"
        )
        base = entry["baseline"]
        print(
            f"{'':>8} {'old':>7} {_s(base['p50_s'])} {_s(base['p95_s'])} {_s(base['p99_s'])} "
            f"{base['calls_per_hour']:>7} {base['throttled']:>3}  baseline: sliding window alone, same span"
        )
        if "paced_model" in entry:
            model = entry["paced_model"]
            print(
                f"{'':>8} {'model':>7} {_s(model['p50_s'])} {_s(model['p95_s'])} {_s(model['p99_s'])} "
                f"{model['calls_per_hour']:>7} {model['throttled']:>3}  the pacing model, same span"
            )
            for name, steady in entry["steady_hour"].items():
                print(
                    f"{'':>8} {'hour':>7} {_s(steady['p50_s'])} {_s(steady['p95_s'])} {_s(steady['p99_s'])} "
                    f"{steady['calls_per_hour']:>7} {steady['throttled']:>3}  steady hour, {name}"
                )
            sent = entry["change_to_sent"]
            print(
                f"{'':>8} change->sent p50 {sent['p50_s']} p95 {sent['p95_s']} s, call->confirmed p50 "
                f"{entry['call_to_confirm_p50_s']} s; peak {entry['peak_rss_mb']} MB (handlers <= "
                f"{entry['handlers_rss_mb']} MB); {entry['wall_seconds']} s wall"
            )
    if result["quick"]:
        print("--quick: spans too short for the percentiles to mean much; only throttling or a broken run fails it")
    print(f"wall {result['wall_seconds']} s")


def _s(value: float | None) -> str:
    return f"{value:>7.1f}" if value is not None else f"{'-':>7}"


if __name__ == "__main__":
    raise SystemExit(main())
