"""The SQS batch processor: bad input dead-lettered with its reason, anything else delivered again, and a whole
batch handled at once where a use case plans it so (push_batch)."""

from __future__ import annotations

from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from stocksync.errors import InvalidInputError
from stocksync.integrations.sqs_batch import MAX_RECEIVES, ReasonedBatchProcessor, WholeBatchProcessor
from stocksync.models.push import VerifyMessage
from tests.support import FakeLambdaContext, sqs_event


class DeadLetters:
    """The reasoned dead-letter queue, in memory; ``broken`` makes every send fail like an SQS outage."""

    def __init__(self, *, broken: bool = False) -> None:
        self.sent: list[tuple[str, str, Any]] = []
        self.queue_arns: list[str | None] = []
        self.broken = broken

    def send(self, *, source: str, reason: str, body: Any, queue_arn: str | None = None) -> None:
        if self.broken:
            raise ConnectionError("sqs unreachable")
        self.sent.append((source, reason, body))
        self.queue_arns.append(queue_arn)


def failures(response: dict[str, Any]) -> list[str]:
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def verify(record: SQSRecord) -> None:
    message = VerifyMessage.model_validate_json(record.body)
    if message.handle == "throttled":
        raise TimeoutError("the status call timed out")  # may succeed later


def test_bad_input_is_dead_lettered_with_the_field_and_a_transient_error_comes_back() -> None:
    dead_letters = DeadLetters()
    processor = ReasonedBatchProcessor(source="verify_batch", dead_letters=dead_letters)  # type: ignore[arg-type]
    event = sqs_event([{"handle": "h-1"}, {"handle": 7}, {"handle": "throttled"}, "not json"])
    response = processor.run(event, FakeLambdaContext(), verify)
    assert failures(response) == ["msg-2"]
    assert processor.invalid == 2
    assert [(source, reason.split(":")[0]) for source, reason, _body in dead_letters.sent] == [
        ("verify_batch", "handle"),
        ("verify_batch", "body"),
    ]
    assert dead_letters.sent[0][2] == {"handle": 7}  # the body as sent, parsed back to JSON where it is JSON
    # The queue each body is a whole message of, so `stocksync redrive` can send it back there after a fix.
    assert dead_letters.queue_arns == ["arn:aws:sqs:us-east-1:123456789012:queue"] * 2


def test_bad_input_that_cannot_be_dead_lettered_comes_back_for_the_next_try() -> None:
    processor = ReasonedBatchProcessor(source="verify_batch", dead_letters=DeadLetters(broken=True))  # type: ignore[arg-type]
    response = processor.run(sqs_event([{"handle": 7}, {"handle": "h-1"}]), FakeLambdaContext(), verify)
    assert failures(response) == ["msg-0"]
    assert processor.invalid == 0


def test_a_batch_where_every_record_failed_is_raised_whole() -> None:
    processor = ReasonedBatchProcessor(source="verify_batch", dead_letters=DeadLetters())  # type: ignore[arg-type]
    with pytest.raises(BatchProcessingError):
        processor.run(sqs_event([{"handle": "throttled"}, {"handle": "throttled"}]), FakeLambdaContext(), verify)


def test_a_whole_batch_is_handled_once_with_the_valid_records_and_names_what_comes_back() -> None:
    calls: list[list[str]] = []

    def plan(handles: list[str]) -> list[str]:
        calls.append(handles)
        return ["msg-3"]  # e.g. a row whose call failed

    def parse(record: SQSRecord) -> str:
        handle = record.json_body.get("handle")
        if not isinstance(handle, str):
            raise InvalidInputError("handle", "must be a string")
        return handle

    dead_letters = DeadLetters()
    processor: WholeBatchProcessor[str] = WholeBatchProcessor(
        source="push_batch",
        dead_letters=dead_letters,  # type: ignore[arg-type]
        handle_batch=plan,
    )
    event = sqs_event([{"handle": "a"}, {"handle": None}, {"handle": "b"}, {"handle": "c"}])
    response = processor.run(event, FakeLambdaContext(), parse)
    assert calls == [["a", "b", "c"]]
    assert failures(response) == ["msg-3"]
    assert [reason for _source, reason, _body in dead_letters.sent] == ["handle: must be a string"]


def test_a_whole_batch_of_bad_records_still_runs_the_batch_step_with_nothing() -> None:
    calls: list[list[str]] = []

    def plan(handles: list[str]) -> list[str]:
        calls.append(handles)
        return []

    def parse(record: SQSRecord) -> str:
        raise InvalidInputError("handle", "missing")

    processor: WholeBatchProcessor[str] = WholeBatchProcessor(
        source="push_batch",
        dead_letters=DeadLetters(),  # type: ignore[arg-type]
        handle_batch=plan,
    )
    assert failures(processor.run(sqs_event([{}, {}]), FakeLambdaContext(), parse)) == []
    assert calls == [[]]


def on_try(event: dict[str, Any], count: int) -> dict[str, Any]:
    for record in event["Records"]:
        record["attributes"]["ApproximateReceiveCount"] = str(count)
    return event


def test_an_unexpected_failure_comes_back_until_its_last_try_then_is_dead_lettered_with_its_class_and_message() -> None:
    dead_letters = DeadLetters()

    def boom(record: SQSRecord) -> None:
        if "x" in record.json_body:
            raise RuntimeError("the table\nis gone")

    for count in range(1, MAX_RECEIVES):
        processor = ReasonedBatchProcessor(source="recompute_stock", dead_letters=dead_letters)  # type: ignore[arg-type]
        event = on_try(sqs_event([{"x": 1}, {"ok": 1}]), count)
        assert failures(processor.run(event, FakeLambdaContext(), boom)) == ["msg-0"]
    assert dead_letters.sent == []

    processor = ReasonedBatchProcessor(source="recompute_stock", dead_letters=dead_letters)  # type: ignore[arg-type]
    event = on_try(sqs_event([{"x": 1}, {"ok": 1}, {"x": 2}]), MAX_RECEIVES)
    response = processor.run(event, FakeLambdaContext(), boom)
    assert failures(response) == []  # deleted from the queue: the reasoned DLQ has both failures
    assert dead_letters.sent == [
        (
            "recompute_stock",
            f"unexpected RuntimeError on the last of {MAX_RECEIVES} tries: the table is gone",
            {"x": 1},
        ),
        (
            "recompute_stock",
            f"unexpected RuntimeError on the last of {MAX_RECEIVES} tries: the table is gone",
            {"x": 2},
        ),
    ]
    assert processor.invalid == 0  # not bad input


def test_a_last_try_that_cannot_be_dead_lettered_is_left_to_the_queues_own_dlq() -> None:
    processor = ReasonedBatchProcessor(source="verify_batch", dead_letters=DeadLetters(broken=True))  # type: ignore[arg-type]
    event = on_try(sqs_event([{"handle": "throttled"}, {"handle": "h-1"}]), MAX_RECEIVES)
    assert failures(processor.run(event, FakeLambdaContext(), verify)) == ["msg-0"]


def test_every_queue_a_function_consumes_redrives_after_max_receives() -> None:
    from stocksync_dev.local.template import REPO_ROOT, load_template

    resources = load_template(REPO_ROOT / "template.yaml")["Resources"]
    consumed = {
        event["Properties"]["Queue"]["Fn::GetAtt"][0]
        for resource in resources.values()
        if resource.get("Type") == "AWS::Serverless::Function"
        for event in (resource["Properties"].get("Events") or {}).values()
        if event.get("Type") == "SQS"
    }
    assert len(consumed) >= 10
    counts = {queue: resources[queue]["Properties"]["RedrivePolicy"]["maxReceiveCount"] for queue in consumed}
    assert set(counts.values()) == {MAX_RECEIVES}, counts


def whole(dead_letters: DeadLetters, plan: Any) -> WholeBatchProcessor[str]:
    return WholeBatchProcessor(source="push_batch", dead_letters=dead_letters, handle_batch=plan)  # type: ignore[arg-type]


def handle_of(record: SQSRecord) -> str:
    return str(record.json_body["handle"])


def test_a_batch_step_that_raises_brings_every_record_back_until_the_last_try_then_dead_letters_its_class() -> None:
    """push_batch's whole-batch failure (its planning step raised) on the last try goes to the reasoned DLQ with
    the exception's class and message, not to the push queue's own DLQ with nothing said."""

    def plan(handles: list[str]) -> list[str]:
        raise ConnectionError("batches\ntable unreachable")

    dead_letters = DeadLetters()
    event = on_try(sqs_event([{"handle": "a"}, {"handle": "b"}]), MAX_RECEIVES - 1)
    assert failures(whole(dead_letters, plan).run(event, FakeLambdaContext(), handle_of)) == ["msg-0", "msg-1"]
    assert dead_letters.sent == []

    dead_letters = DeadLetters()
    event = on_try(sqs_event([{"handle": "a"}, {"handle": "b"}]), MAX_RECEIVES)
    assert failures(whole(dead_letters, plan).run(event, FakeLambdaContext(), handle_of)) == []
    reason = f"unexpected ConnectionError on the last of {MAX_RECEIVES} tries: batches table unreachable"
    assert dead_letters.sent == [("push_batch", reason, {"handle": "a"}), ("push_batch", reason, {"handle": "b"})]


def test_records_the_batch_step_names_failed_are_dead_lettered_on_their_last_try_with_the_reason_it_gave() -> None:
    def plan(handles: list[str]) -> dict[str, str]:
        return {"msg-0": "GraphServerError: (#2) service unavailable"}

    dead_letters = DeadLetters()
    event = on_try(sqs_event([{"handle": "a"}, {"handle": "b"}]), MAX_RECEIVES)
    assert failures(whole(dead_letters, plan).run(event, FakeLambdaContext(), handle_of)) == []
    assert dead_letters.sent == [
        (
            "push_batch",
            f"failed on the last of {MAX_RECEIVES} tries: GraphServerError: (#2) service unavailable",
            {"handle": "a"},
        )
    ]

    broken = DeadLetters(broken=True)  # the reasoned queue unreachable: SQS keeps the record (its own DLQ next)
    assert failures(whole(broken, plan).run(event, FakeLambdaContext(), handle_of)) == ["msg-0"]
