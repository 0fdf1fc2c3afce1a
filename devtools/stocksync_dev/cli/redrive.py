"""``stocksync redrive --stack-name NAME [--queue QUEUE]... [--dry-run]``: after a fix, send dead letters back to
the queue they came from, and say what moved, what stayed and why.

A stack has three kinds of dead-letter queue, and each says differently where its messages came from:

- the reasoned queue (``DeadLetterQueue``): handlers put each record they refuse there as
  ``{"source", "reason", "body", "queue_arn"}``; ``queue_arn`` names the queue ``body`` is a whole message of (a
  record of an SQS batch). A letter without it (one entry of a levels event, an order read by the poller, an
  item error of a push) has no queue to go back to: it is left, and reported with its source.
- each work queue's own DLQ (``PushDeadLetterQueue``, ...): SQS moved the message there after its receives ran out
  (the queue's RedrivePolicy names the DLQ, so the source queue is the one whose policy points at it). The message
  goes back as it is, message attributes and all.
- the EventBridge DLQs (``BusDeadLetterQueue``, the schedules' ``...ScheduleDeadLetterQueue``): the event a rule
  could not deliver, with the target in its ``TARGET_ARN`` attribute. An event for a queue of the stack goes to
  that queue; one for a function (a scheduled run) is left: the next scheduled run does the same work.

Re-sending is safe because every handler is idempotent under SQS redelivery (an order already counted is not
counted twice, a stale level or settings change loses to a newer one). A message is deleted from its DLQ only
after SQS accepted it on the source queue, so a crash in between sends it twice at worst, never loses it; a run
after a run changes nothing more. ``--dry-run`` sends and deletes nothing and reports what would move. Messages
left in a DLQ are made visible again at the end of the run. The stack is read with ``--stack-name`` (its queues
and their redrive policies); SQS hands out what is in a queue at the time of the run (not what another reader
holds in flight then).

Exit status: 0 when nothing was left behind (in a dry run: would be), 1 when some dead letters stay in their
queue (their source could not be determined, or SQS refused them), 2 when the stack cannot be read or a
``--queue`` is not one of its dead-letter queues.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from stocksync_dev.cli.stack_settings import SettingsError, add_stack_arguments, session, stack_resources

COMMAND = "redrive"
HELP = "after a fix, send dead letters back to the queue they came from (idempotent); --dry-run to look first"
REASONED_QUEUE = "DeadLetterQueue"  # template.yaml's reasoned dead-letter queue
DLQ_SUFFIX = "DeadLetterQueue"
# Messages stay hidden from other readers this long while a run decides about them; those left are shown again
# at the end of the run (or when this runs out, if the run dies).
VISIBILITY_SECONDS = 300
REASON_CHARACTERS = 160
_BATCH = 10  # SQS's limit per batch call
_EMPTY_RETRIES = 3


@dataclass
class Letter:
    """One dead letter, and where it goes back to (None: it stays)."""

    message_id: str
    receipt_handle: str
    body: str
    reason: str
    target: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    left_because: str = ""


@dataclass
class QueueReport:
    queue: str
    moved: int = 0
    left: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    left_because: Counter[str] = field(default_factory=Counter)
    targets: Counter[str] = field(default_factory=Counter)

    def summary(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "moved": self.moved,
            "left": self.left,
            "reasons": dict(self.reasons.most_common()),
            "left_because": dict(self.left_because.most_common()),
            "to": dict(self.targets.most_common()),
        }


class StackQueues:
    """The stack's queues by logical id, their ARNs and which work queue each DLQ serves."""

    def __init__(self, sqs: Any, resources: dict[str, tuple[str, str]]) -> None:
        self.sqs = sqs
        self.urls = {name: url for name, (kind, url) in resources.items() if kind == "AWS::SQS::Queue" and url}
        self.arns: dict[str, str] = {}
        self.sources: dict[str, list[str]] = {}  # DLQ logical id -> the work queues whose RedrivePolicy names it
        for name, url in self.urls.items():
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn", "RedrivePolicy"])
            attributes = attributes.get("Attributes", {})
            self.arns[name] = attributes.get("QueueArn", "")
            if attributes.get("RedrivePolicy"):
                self.sources.setdefault(json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"], []).append(name)
        by_arn = {arn: name for name, arn in self.arns.items()}
        self.sources = {by_arn[arn]: names for arn, names in self.sources.items() if arn in by_arn}
        self.by_arn = by_arn

    def dead_letter_queues(self) -> list[str]:
        return sorted(name for name in self.urls if name.endswith(DLQ_SUFFIX) or name in self.sources)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--queue",
        action="append",
        metavar="NAME",
        help="only this dead-letter queue (its logical id in template.yaml: DeadLetterQueue, PushDeadLetterQueue, "
        "BusDeadLetterQueue, ...); repeat for several (default: every one of the stack)",
    )
    parser.add_argument("--dry-run", action="store_true", help="move nothing; report what would move")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    add_stack_arguments(parser)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``redrive`` on the ``stocksync`` command's subparsers."""
    parser = subparsers.add_parser(COMMAND, help=HELP, description=HELP)
    _add_arguments(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    if not args.stack_name:
        print(
            f"stocksync {COMMAND}: give --stack-name: the stack lists every dead-letter queue and the queue each "
            "one serves",
            file=sys.stderr,
        )
        return 2
    try:
        queues = StackQueues(session(args).client("sqs"), stack_resources(args))
    except SettingsError as error:
        print(f"stocksync {COMMAND}: {error}", file=sys.stderr)
        return 2
    known = queues.dead_letter_queues()
    chosen = known
    if args.queue:
        by_lower = {name.lower(): name for name in known}
        unknown = [name for name in args.queue if name.lower() not in by_lower]
        if unknown:
            print(
                f"stocksync {COMMAND}: not a dead-letter queue of stack {args.stack_name!r}: {', '.join(unknown)}; "
                f"its dead-letter queues: {', '.join(known)}",
                file=sys.stderr,
            )
            return 2
        chosen = sorted({by_lower[name.lower()] for name in args.queue})
    reports = [redrive_queue(queues, name, dry_run=args.dry_run) for name in chosen]
    if args.json:
        print(json.dumps({"dry_run": args.dry_run, "queues": [r.summary() for r in reports]}, indent=2))
    else:
        print(describe(reports, dry_run=args.dry_run))
    return 1 if any(report.left for report in reports) else 0


def redrive_queue(queues: StackQueues, name: str, *, dry_run: bool) -> QueueReport:
    """Every message SQS hands out from dead-letter queue ``name``: sent to its source and deleted (unless
    ``dry_run``), or left in place and made visible again."""
    sqs, url = queues.sqs, queues.urls[name]
    report = QueueReport(name)
    seen: set[str] = set()
    to_show_again: list[Letter] = []
    # A short-polling receive samples some of SQS's servers and may come back empty while messages wait: until as
    # many as the queue counted at the start were seen, an empty answer is retried as a long poll (all servers).
    expected = _visible(sqs, url)
    empty_answers = 0
    while True:
        answer = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=_BATCH,
            VisibilityTimeout=VISIBILITY_SECONDS,
            WaitTimeSeconds=1 if empty_answers else 0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        fresh = [message for message in answer.get("Messages", []) if message["MessageId"] not in seen]
        if not fresh:
            empty_answers += 1
            if len(seen) >= expected or empty_answers > _EMPTY_RETRIES:
                break
            continue
        empty_answers = 0
        letters = [_letter(queues, name, message) for message in fresh]
        seen.update(letter.message_id for letter in letters)
        for letter in letters:
            report.reasons[letter.reason] += 1
        movable = [letter for letter in letters if letter.target is not None]
        for letter in letters:
            if letter.target is None:
                _leave(report, letter)
                to_show_again.append(letter)
        if dry_run:
            for letter in movable:
                report.moved += 1
                report.targets[_name_of(queues, letter.target)] += 1
            to_show_again.extend(movable)
            continue
        for letter, refused in _send(sqs, movable):
            if refused:
                letter.left_because = f"SQS refused it on {_name_of(queues, letter.target)}: {refused}"
                _leave(report, letter)
                to_show_again.append(letter)
            else:
                report.moved += 1
                report.targets[_name_of(queues, letter.target)] += 1
                _delete(sqs, url, letter)
    _show_again(sqs, url, to_show_again)
    return report


def _visible(sqs: Any, url: str) -> int:
    answer = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(answer.get("Attributes", {}).get("ApproximateNumberOfMessages", 0))


def _letter(queues: StackQueues, dlq: str, message: dict[str, Any]) -> Letter:
    letter = Letter(message["MessageId"], message["ReceiptHandle"], message["Body"], reason="")
    attributes = message.get("MessageAttributes", {})
    if dlq == REASONED_QUEUE:
        return _reasoned(queues, letter)
    sources = queues.sources.get(dlq, [])
    if sources:
        letter.reason = "no reason recorded (its receives ran out on " + ", ".join(sources) + ")"
        if len(sources) == 1:
            letter.target = queues.urls[sources[0]]
            letter.attributes = _sendable(attributes)
        else:
            letter.left_because = f"{len(sources)} queues send their failures here: {', '.join(sources)}"
        return letter
    code = _attribute(attributes, "ERROR_CODE")
    letter.reason = (f"{code}: {_attribute(attributes, 'ERROR_MESSAGE')}" if code else "no reason recorded")[
        :REASON_CHARACTERS
    ]
    target_arn = _attribute(attributes, "TARGET_ARN")
    if target_arn and target_arn in queues.by_arn:
        letter.target = queues.urls[queues.by_arn[target_arn]]
    elif target_arn:
        letter.left_because = (
            f"its target {target_arn.split(':', 5)[-1]} is not a queue of the stack (a scheduled run: the next "
            "one does the same work)"
        )
    else:
        letter.left_because = "no queue names it in its redrive policy and it names no target"
    return letter


def _reasoned(queues: StackQueues, letter: Letter) -> Letter:
    try:
        content = json.loads(letter.body)
        source, reason = str(content["source"]), str(content["reason"])
        body = content["body"]
    except (ValueError, KeyError, TypeError):
        letter.reason = "not a dead letter of stocksync (no source, reason and body)"
        letter.left_because = letter.reason
        return letter
    letter.reason = f"{source}: {reason}"[:REASON_CHARACTERS]
    queue_arn = content.get("queue_arn")
    if not queue_arn:
        letter.left_because = f"{source} recorded no queue (a part of a message, or a record read from elsewhere)"
    elif queue_arn not in queues.by_arn:
        letter.left_because = f"its queue {queue_arn.split(':', 5)[-1]} is not a queue of the stack"
    else:
        letter.target = queues.urls[queues.by_arn[queue_arn]]
        letter.body = body if isinstance(body, str) else json.dumps(body, sort_keys=True)
    return letter


def _leave(report: QueueReport, letter: Letter) -> None:
    report.left += 1
    report.left_because[letter.left_because] += 1


def _send(sqs: Any, letters: list[Letter]) -> list[tuple[Letter, str]]:
    """Each letter with why SQS refused it on its target ("" when accepted)."""
    results: list[tuple[Letter, str]] = []
    by_target: dict[str, list[Letter]] = {}
    for letter in letters:
        by_target.setdefault(str(letter.target), []).append(letter)
    for target, batch in by_target.items():
        entries = [
            {
                "Id": str(index),
                "MessageBody": letter.body,
                **({"MessageAttributes": letter.attributes} if letter.attributes else {}),
            }
            for index, letter in enumerate(batch)
        ]
        answer = sqs.send_message_batch(QueueUrl=target, Entries=entries)
        refused = {
            int(failure["Id"]): f"{failure.get('Code')}: {failure.get('Message', '')}"
            for failure in answer.get("Failed", [])
        }
        results += [(letter, refused.get(index, "")) for index, letter in enumerate(batch)]
    return results


def _delete(sqs: Any, url: str, letter: Letter) -> None:
    sqs.delete_message(QueueUrl=url, ReceiptHandle=letter.receipt_handle)


def _show_again(sqs: Any, url: str, letters: list[Letter]) -> None:
    for start in range(0, len(letters), _BATCH):
        entries = [
            {"Id": str(index), "ReceiptHandle": letter.receipt_handle, "VisibilityTimeout": 0}
            for index, letter in enumerate(letters[start : start + _BATCH])
        ]
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)


def _attribute(attributes: dict[str, Any], name: str) -> str:
    return str(attributes.get(name, {}).get("StringValue", ""))


def _sendable(attributes: dict[str, Any]) -> dict[str, Any]:
    """Received message attributes in the shape SendMessage takes."""
    sendable = {}
    for name, value in attributes.items():
        kept = {key: value[key] for key in ("DataType", "StringValue", "BinaryValue") if key in value}
        if "DataType" in kept:
            sendable[name] = kept
    return sendable


def _name_of(queues: StackQueues, url: str | None) -> str:
    return next((name for name, known in queues.urls.items() if known == url), str(url))


def describe(reports: list[QueueReport], *, dry_run: bool) -> str:
    verb = "would move" if dry_run else "moved"
    busy = [report for report in reports if report.moved or report.left]
    lines = [
        f"{len(reports)} dead-letter queues checked: {verb} {sum(r.moved for r in reports)}, left "
        f"{sum(r.left for r in reports)}" + ("" if busy else " (all empty)")
    ]
    for report in busy:
        to = ", ".join(f"{count} to {name}" for name, count in report.targets.most_common())
        lines.append(f"{report.queue}: {verb} {report.moved}" + (f" ({to})" if to else "") + f", left {report.left}")
        lines += [f"  {count} x {reason}" for reason, count in report.reasons.most_common(5)]
        if len(report.reasons) > 5:
            lines.append(f"  ... and {len(report.reasons) - 5} other reasons")
        lines += [f"  left: {count} x {why}" for why, count in report.left_because.most_common()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"stocksync {COMMAND}", description=HELP)
    _add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
