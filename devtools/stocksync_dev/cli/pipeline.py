"""Running the deployed pipeline locally: what Lambda's event source mappings and schedules would do, in-process.

The wiring is read from template.yaml (which function consumes which queue, its batch size, which schedule carries
which input), so the replay exercises exactly what ``sam deploy`` would create. Handlers are the real
``functions/<name>/app.py`` entry points, called with real SQS events built from the messages moto holds.

Time: SQS delays and visibility timeouts are real seconds in moto. When the only messages left are delayed or
in flight, the pipeline moves time forward instead of sleeping: the simulator's clock (which the product's
``stocksync.clock`` follows during a replay) and every message's delay and visibility by the same amount.

Schedules: each schedule's expression is read too (``schedules.interval_seconds``), so a replay can fire a
function on the cadence a deployment would (the poll every PollRate) between deliveries instead of once before or
after them.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from moto.backends import get_backend
from moto.core.utils import unix_time_millis

from stocksync.observability import metrics
from stocksync_dev.cli.schedules import interval_seconds
from stocksync_dev.local.aws import LocalAws
from stocksync_dev.local.template import REPO_ROOT, load_template, parameter_values

MAX_ROUNDS = 10_000


class PipelineStuckError(RuntimeError):
    """The queues did not drain within the round limit (a message keeps failing without reaching a DLQ)."""


@dataclass(frozen=True)
class Consumer:
    """A function fed by a queue, as the template's SQS event source declares it."""

    function: str  # folder under functions/
    queue_logical_id: str
    queue_url: str
    batch_size: int
    # MaximumBatchingWindowInSeconds: how long Lambda gathers messages before it invokes with fewer than batch_size.
    batching_window: float = 0.0


@dataclass(frozen=True)
class ScheduledInvocation:
    """A function's schedule event, with the input its target passes (e.g. a bucket sweep's bucket) and its
    schedule expression as deployed (``rate(5 minutes)``, ``cron(...)``; None when the template gives none)."""

    function: str
    event_name: str
    payload: dict[str, Any]
    expression: str | None = None


def scheduler_input(payload: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The input as EventBridge Scheduler delivers it: its context attributes (``<aws.scheduler.scheduled-time>``,
    ``<aws.scheduler.execution-id>``...) replaced by the values of this invocation."""
    values = {
        "<aws.scheduler.scheduled-time>": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "<aws.scheduler.execution-id>": str(uuid.uuid4()),
        "<aws.scheduler.attempt-number>": "1",
        "<aws.scheduler.schedule-arn>": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/stocksync-replay",
    }
    return {name: values.get(value, value) if isinstance(value, str) else value for name, value in payload.items()}


class HandlerContext:
    """The LambdaContext attributes handlers read; a replay gives each invocation 15 minutes."""

    def __init__(self, function: str) -> None:
        self.function_name = f"stocksync-replay-{function}"
        self.memory_limit_in_mb = 256
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def load_function(function: str, root: Path = REPO_ROOT) -> ModuleType:
    """Import functions/<function>/app.py under a private module name (the same file Lambda would run)."""
    path = root / "functions" / function / "app.py"
    if not path.is_file():
        raise FileNotFoundError(f"no handler at {path}")
    name = f"stocksync_replay_{function}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def function_folder(properties: dict[str, Any]) -> str:
    return Path(str(properties.get("CodeUri", "")).rstrip("/")).name


def _ref_target(value: Any) -> str | None:
    """The logical id a ``!GetAtt X.Arn`` / ``!Ref X`` points at, as load_template represents it."""
    if isinstance(value, dict):
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return (target[0] if isinstance(target, list) else str(target).split(".")[0]) or None
        if "Ref" in value:
            return str(value["Ref"])
    return None


def _resolve(value: Any, parameters: dict[str, str]) -> Any:
    """A property's value with a ``!Ref Parameter`` replaced by the deployed parameter value."""
    if isinstance(value, dict) and "Ref" in value and value["Ref"] in parameters:
        return parameters[value["Ref"]]
    return value


def discover(
    template: dict[str, Any], resources: dict[str, tuple[str, str]], parameters: dict[str, str]
) -> tuple[list[Consumer], list[ScheduledInvocation]]:
    consumers: list[Consumer] = []
    schedules: list[ScheduledInvocation] = []
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource.get("Properties", {})
        function = function_folder(properties)
        for event_name, event in (properties.get("Events") or {}).items():
            kind, spec = event.get("Type"), event.get("Properties", {})
            if kind == "SQS":
                queue = _ref_target(spec.get("Queue"))
                if queue and queue in resources:
                    consumers.append(
                        Consumer(
                            function,
                            queue,
                            resources[queue][1],
                            int(_resolve(spec.get("BatchSize", 10), parameters)),
                            float(_resolve(spec.get("MaximumBatchingWindowInSeconds", 0), parameters)),
                        )
                    )
            elif kind in ("Schedule", "ScheduleV2"):
                raw = _resolve(spec.get("Input"), parameters)
                payload = json.loads(raw) if isinstance(raw, str) else {}
                expression = _resolve(spec.get("Schedule" if kind == "Schedule" else "ScheduleExpression"), parameters)
                schedules.append(
                    ScheduledInvocation(
                        function, event_name, payload, expression if isinstance(expression, str) else None
                    )
                )
    return consumers, schedules


class LocalPipeline:
    """Drives the handlers of a LocalAws stack until every consumed queue is empty."""

    def __init__(
        self, local: LocalAws, *, advance_clock: Callable[[float], None], invocation_seconds: float = 0.0
    ) -> None:
        """``invocation_seconds``: simulated time each invocation takes (the clock moves by it afterwards). 0 keeps
        the clock still, as step-by-step tests want; a replay gives invocations a duration, because on a clock that
        never moves a poll, the recompute it causes and the read that follows all happen at one instant, which no
        deployment sees (a read that began at the very instant a poll saw a restock cannot tell which came first,
        and would be asked for again and again)."""
        self._local = local
        self._sqs = local.client("sqs")
        self._advance_clock = advance_clock
        self._invocation_seconds = invocation_seconds
        template = load_template(local.template_path)
        parameters = parameter_values(template, local.parameter_overrides)
        self.consumers, self.schedules = discover(template, local.resources, parameters)
        self._handlers: dict[str, ModuleType] = {}
        self._account_id: str | None = None
        self.invocations: dict[str, int] = {}
        # Simulated seconds the pipeline has moved the clock by, and per windowed queue the moment (on that count)
        # its batching window opened: when the pipeline first found a message deliverable there.
        self._elapsed = 0.0
        self._window_opened: dict[str, float] = {}
        self._looked_ms = _now_ms()  # when _hold_real_time last ran (real milliseconds, moto's clock)

    def handler(self, function: str) -> ModuleType:
        if function not in self._handlers:
            self._handlers[function] = load_function(function, self._local.template_path.parent)
        return self._handlers[function]

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        self.invocations[function] = self.invocations.get(function, 0) + 1
        try:
            return self.handler(function).lambda_handler(event, HandlerContext(function))
        finally:
            if is_metrics_disabled():
                # A disabled flush keeps what the invocation added, and Powertools prints a metric set once one
                # metric holds 100 values, disabled or not: a long replay (or tune's many) would print EMF blobs
                # on stderr. Drop them as the flush of an enabled run does.
                metrics.clear_metrics()
            if self._invocation_seconds:
                self.fast_forward(self._invocation_seconds)

    def run_schedule(self, function: str, payload: dict[str, Any] | None = None) -> Any:
        event = payload if payload else {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
        try:
            return self.invoke(function, event)
        except Exception as error:
            # A scheduled invocation that raised is a function error (its Errors metric); the next tick runs anew.
            print(f"{function}: scheduled invocation failed: {error!r}"[:500], file=sys.stderr)
            return None

    def schedule_of(self, function: str) -> ScheduledInvocation:
        """The function's one schedule in the template (KeyError when it has none, or several)."""
        found = [schedule for schedule in self.schedules if schedule.function == function]
        if len(found) != 1:
            raise KeyError(f"template.yaml gives {function} {len(found)} schedules, not one")
        return found[0]

    def interval_of(self, function: str) -> float:
        """Seconds between two runs of the function's schedule, as deployed (e.g. PollRate for poll_orders)."""
        expression = self.schedule_of(function).expression
        if expression is None:
            raise KeyError(f"template.yaml gives {function}'s schedule no expression")
        return interval_seconds(expression)

    def sweep(self, bucket: str) -> Any:
        """One bucket's scheduled sweep: the template's schedule whose input names ``bucket``.

        A bucket without a schedule of its own (one a replay declares through STOCKSYNC_BUCKETS, whose settings every
        function then honours) is swept the way a schedule added for it would: the function the template's bucket
        schedules invoke, with their input shape (``{"bucket": name}``). That function refuses, to the dead-letter
        queue, a bucket its settings do not know.
        """
        sweeps = [schedule for schedule in self.schedules if "bucket" in schedule.payload]
        for schedule in sweeps:
            if schedule.payload["bucket"] == bucket:
                return self.invoke(schedule.function, schedule.payload)
        functions = sorted({schedule.function for schedule in sweeps})
        if len(functions) != 1:
            raise KeyError(f"no schedule in template.yaml sweeps bucket {bucket!r}, and no one function sweeps buckets")
        return self.invoke(functions[0], {"bucket": bucket})

    def drain(self) -> None:
        """Deliver messages until every consumed queue is empty, moving time over delays instead of sleeping."""
        for _ in range(MAX_ROUNDS):
            if self.deliver_next():
                continue
            wait = self.next_wait()
            if wait is None:
                return
            self.fast_forward(wait)
        raise PipelineStuckError(f"queues did not drain in {MAX_ROUNDS} rounds")

    def deliver_next(self) -> bool:
        """One batch to one function: the first consumer (in template order) whose queue has a batch due. False when
        none has; a caller that interleaves other work (a schedule) between deliveries uses this.

        A batch is due as Lambda's event source mapping invokes: at once without a batching window; with one
        (``MaximumBatchingWindowInSeconds``), when ``batch_size`` messages are deliverable or when the window, on
        the simulated clock, has run since a message was first found deliverable there.
        """
        self._hold_real_time()
        return any(self._due(consumer) and self._deliver(consumer) for consumer in self.consumers)

    def _hold_real_time(self) -> float:
        """Keep moto's delays and visibility timeouts on the simulated clock.

        moto counts them in real time, which passes while handlers run although the simulated clock moves only by
        ``fast_forward``: a row push_batch delays until the next call slot would come back before the slot on a
        slow machine. So every pending delay and timeout is pushed back by the real time since the last look (a
        message sent meanwhile, from its send), and a message becomes deliverable when the simulated clock reaches
        it, however long the handlers took.
        """
        now_ms = _now_ms()
        since, self._looked_ms = self._looked_ms, now_ms
        if now_ms <= since:
            return now_ms
        for queue in self._queues():
            for message in queue._messages:
                if message.delayed_until > since:
                    message.delayed_until += now_ms - max(since, message.sent_timestamp or since)
                if message.visible_at > since:
                    message.visible_at += now_ms - since
        return now_ms

    def _due(self, consumer: Consumer) -> bool:
        """Whether Lambda would invoke the consumer now. Judged from moto's queue, as receive would judge it: a
        ReceiveMessage that finds nothing costs a whole request through botocore and moto, and asking every queue
        after every step made those empty answers most of a long replay's time (issue 15's week of 1,000 SKUs)."""
        now_ms = _now_ms()
        messages = self._queue(consumer)._messages
        if consumer.batching_window <= 0:
            return any(_deliverable(message, now_ms) for message in messages)
        ready = sum(1 for message in messages if _deliverable(message, now_ms))
        if not ready:
            self._window_opened.pop(consumer.queue_logical_id, None)
            return False
        opened = self._window_opened.setdefault(consumer.queue_logical_id, self._elapsed)
        if ready >= consumer.batch_size or self._elapsed - opened >= consumer.batching_window:
            del self._window_opened[consumer.queue_logical_id]  # the next window opens with the next message
            return True
        return False

    def _deliver(self, consumer: Consumer) -> bool:
        messages: list[dict[str, Any]] = []
        while len(messages) < consumer.batch_size:
            answer = self._sqs.receive_message(
                QueueUrl=consumer.queue_url,
                MaxNumberOfMessages=min(10, consumer.batch_size - len(messages)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            batch = answer.get("Messages", [])
            messages.extend(batch)
            if len(batch) < min(10, consumer.batch_size - len(messages) + len(batch)):
                break  # fewer than asked for: nothing more is deliverable (moto answers with all it has, up to 10)
        if not messages:
            return False
        arn = f"arn:aws:sqs:us-east-1:123456789012:{consumer.queue_url.rsplit('/', 1)[-1]}"
        event = {"Records": [_record(message, arn) for message in messages]}
        try:
            answer = self.invoke(consumer.function, event) or {}
        except Exception as error:
            # Lambda's event source mapping treats an invocation that raised (e.g. Powertools' BatchProcessingError
            # when every record of the batch failed) as every record failed: none is deleted, each comes back
            # after its visibility timeout and, on its last receive, the handler dead-letters it with its reason.
            print(
                f"{consumer.function}: invocation failed, its {len(messages)} records return: {error!r}"[:500],
                file=sys.stderr,
            )
            answer = {"batchItemFailures": [{"itemIdentifier": message["MessageId"]} for message in messages]}
        failed = {failure["itemIdentifier"] for failure in answer.get("batchItemFailures", [])}
        done = [message for message in messages if message["MessageId"] not in failed]
        for start in range(0, len(done), 10):  # as Lambda deletes a batch's successes: DeleteMessageBatch, 10 a call
            entries = [
                {"Id": str(position), "ReceiptHandle": message["ReceiptHandle"]}
                for position, message in enumerate(done[start : start + 10])
            ]
            answer = self._sqs.delete_message_batch(QueueUrl=consumer.queue_url, Entries=entries)
            if answer.get("Failed"):
                raise RuntimeError(f"{consumer.queue_logical_id}: SQS did not delete {answer['Failed']}")
        return True

    def _queues(self) -> list[Any]:
        backend = get_backend("sqs")[self._account()][self._local.region]
        return list(backend.queues.values())

    def _queue(self, consumer: Consumer) -> Any:
        name = consumer.queue_url.rsplit("/", 1)[-1]
        return next(queue for queue in self._queues() if queue.name == name)

    def _account(self) -> str:
        if self._account_id is None:  # asked once: a GetCallerIdentity per wait and per clock move adds up
            self._account_id = str(self._local.client("sts").get_caller_identity()["Account"])
        return self._account_id

    def next_wait(self) -> float | None:
        """Seconds until the next consumed message becomes deliverable or a batching window closes, or None when
        no message waits."""
        now_ms = self._hold_real_time()  # the waits count from the moment the queues were held at
        queues = {queue.name: queue for queue in self._queues()}
        waits: list[float] = []
        seen: set[str] = set()
        for consumer in self.consumers:
            name = consumer.queue_url.rsplit("/", 1)[-1]
            if name in seen or name not in queues:
                continue
            seen.add(name)
            messages = queues[name]._messages
            if consumer.batching_window <= 0:
                waits.extend(max(message.delayed_until, message.visible_at) - now_ms for message in messages)
                continue
            # Deliverable messages wait for their window (0: not found yet, deliver_next opens it); the others
            # count from when they become deliverable (they may fill the batch, or open the next window).
            if any(_deliverable(message, now_ms) for message in messages):
                opened = self._window_opened.get(consumer.queue_logical_id)
                waits.append(0.0 if opened is None else (opened + consumer.batching_window - self._elapsed) * 1000)
            waits.extend(
                max(message.delayed_until, message.visible_at) - now_ms
                for message in messages
                if not _deliverable(message, now_ms)
            )
        return max(0.0, min(waits)) / 1000 + 0.001 if waits else None

    def fast_forward(self, seconds: float) -> None:
        """Move the simulated clock and every queued message's delay and visibility by ``seconds``."""
        self._hold_real_time()
        self._advance_clock(seconds)
        self._elapsed += seconds
        shift = seconds * 1000
        for queue in self._queues():
            for message in queue._messages:
                message.delayed_until -= shift
                message.visible_at -= shift


def _now_ms() -> float:
    return float(unix_time_millis())


def _deliverable(message: Any, now_ms: float) -> bool:
    """Neither delayed nor in flight, as moto's receive judges it."""
    return now_ms >= message.delayed_until and now_ms > message.visible_at


def _record(message: dict[str, Any], arn: str) -> dict[str, Any]:
    attributes = message.get("MessageAttributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: {"stringValue": value.get("StringValue"), "dataType": value.get("DataType", "String")}
            for name, value in attributes.items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": "us-east-1",
    }
