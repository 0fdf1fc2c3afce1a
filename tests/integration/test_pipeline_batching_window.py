"""The local pipeline delivers a queue with a batching window as Lambda's event source mapping does.

PushQueue's mapping gathers up to ``PushBatchSize`` messages for ``PushBatchingWindowSeconds`` (template.yaml): a
batch goes when it is full, or when the window has run on the simulated clock since a message was first
deliverable, not as soon as one is. Queues without a window are still delivered at once.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import pytest

from stocksync_dev.cli.pipeline import LocalPipeline
from stocksync_dev.local.aws import LocalAws


class Recorder:
    """A pipeline whose handlers only record what they were given, and when (simulated seconds)."""

    def __init__(self, local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 0.0
        self.calls: list[tuple[str, float, int]] = []
        self.pipeline = LocalPipeline(local_aws, advance_clock=self._advance)
        monkeypatch.setattr(self.pipeline, "invoke", self._invoke)
        self.sqs = local_aws.client("sqs")
        self.urls = {consumer.queue_logical_id: consumer.queue_url for consumer in self.pipeline.consumers}

    def _advance(self, seconds: float) -> None:
        self.now += seconds

    def _invoke(self, function: str, event: dict[str, Any]) -> Any:
        self.calls.append((function, self.now, len(event["Records"])))
        return {}

    def send(self, queue: str, count: int, start: int = 0) -> None:
        for first in range(start, start + count, 10):
            entries = [
                {"Id": str(n), "MessageBody": json.dumps({"retailer_id": f"SKU-{n}", "value": 1, "version": 1})}
                for n in range(first, min(first + 10, start + count))
            ]
            self.sqs.send_message_batch(QueueUrl=self.urls[queue], Entries=entries)


def test_push_queue_is_read_with_the_templates_window_and_batch_size(
    local_aws: LocalAws, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    push = next(c for c in Recorder(local_aws, monkeypatch).pipeline.consumers if c.queue_logical_id == "PushQueue")
    assert (push.batch_size, push.batching_window) == (5000, 10.0)  # PushBatchSize, PushBatchingWindowSeconds
    verify = next(c for c in Recorder(local_aws, monkeypatch).pipeline.consumers if c.function == "verify_batch")
    assert verify.batching_window == 0.0


def test_push_messages_wait_for_the_window_then_go_as_one_batch(
    local_aws: LocalAws, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(local_aws, monkeypatch)
    recorder.send("PushQueue", 6)
    assert not recorder.pipeline.deliver_next()  # visible, but the window has just opened
    recorder.pipeline.fast_forward(4)
    recorder.send("PushQueue", 6, start=6)
    assert not recorder.pipeline.deliver_next()

    recorder.pipeline.drain()

    assert [(function, records) for function, _, records in recorder.calls] == [("push_batch", 12)]
    assert 10 <= recorder.calls[0][1] < 10.1  # when the window closed, on the simulated clock


def test_a_full_batch_goes_before_the_window_closes(
    local_aws: LocalAws, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(local_aws, monkeypatch)
    consumers = recorder.pipeline.consumers
    at = next(n for n, c in enumerate(consumers) if c.queue_logical_id == "PushQueue")
    consumers[at] = dataclasses.replace(consumers[at], batch_size=12)
    recorder.send("PushQueue", 12)

    assert recorder.pipeline.deliver_next()

    assert recorder.calls == [("push_batch", 0.0, 12)]


def test_a_queue_without_a_window_is_delivered_at_once(
    local_aws: LocalAws, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(local_aws, monkeypatch)
    verify = next(c for c in recorder.pipeline.consumers if c.function == "verify_batch")
    recorder.send(verify.queue_logical_id, 1)

    assert recorder.pipeline.deliver_next()

    assert recorder.calls == [("verify_batch", 0.0, 1)]


def test_a_delay_runs_on_the_simulated_clock_not_on_real_time(
    local_aws: LocalAws, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto counts DelaySeconds in real time; a handler that takes real seconds must not bring a delayed message
    (a row waiting for its call slot) back before the simulated clock reaches its time."""
    recorder = Recorder(local_aws, monkeypatch)
    verify = next(c for c in recorder.pipeline.consumers if c.function == "verify_batch")
    recorder.sqs.send_message(QueueUrl=verify.queue_url, MessageBody="{}", DelaySeconds=1)
    time.sleep(1.2)  # real time only, as a slow handler spends it

    assert not recorder.pipeline.deliver_next()
    recorder.pipeline.drain()

    assert [(function, records) for function, _, records in recorder.calls] == [("verify_batch", 1)]
    assert 1 <= recorder.calls[0][1] < 1.1
