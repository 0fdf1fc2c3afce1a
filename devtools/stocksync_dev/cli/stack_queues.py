"""The stack's queues, their depths and the age of their oldest message, read without touching a message.

Which queues: every queue whose name starts like the queues the functions' settings name. CloudFormation names a
stack's queues ``<stack>-<LogicalId>-<suffix>`` (the template gives none a fixed name), so the common prefix of the
settings' queue names, followed by a logical id and a suffix, finds the rest: the order, warehouse, snapshot and
webhook queues and every dead-letter queue, including the schedules' and the bus's, which no function's settings
name. A queue counts as a dead-letter queue when its logical id ends with ``DeadLetterQueue`` (template.yaml names
every one so). Needs sqs:ListQueues and sqs:GetQueueAttributes (and cloudwatch:GetMetricData for the ages).

Depths are SQS's ``ApproximateNumberOf*`` attributes (GetQueueAttributes: receives nothing, moves nothing). The age
of the oldest message is CloudWatch's ``ApproximateAgeOfOldestMessage`` (AWS publishes it every minute for an active
queue); where CloudWatch has no datapoint in the last 15 minutes (an idle queue, moto, no permission) it is
unknown, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from stocksync.models.settings import Settings

AGE_LOOKBACK = timedelta(minutes=15)
_DEAD_LETTER_SUFFIX = "DeadLetterQueue"
_ATTRIBUTES = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
]
_METRIC_QUERIES_PER_CALL = 500
# What CloudFormation puts after the stack's name: the logical id (letters and digits) and a suffix of its own.
_STACK_QUEUE = re.compile(r"[A-Za-z0-9]+-[A-Za-z0-9]+")  # GetMetricData's limit


@dataclass(frozen=True)
class QueueDepth:
    name: str  # the template's logical id when the name has the stack's shape, else the queue's name
    queue_name: str
    url: str
    visible: int
    in_flight: int
    delayed: int
    oldest_age_seconds: float | None = None

    @property
    def dead_letter(self) -> bool:
        return self.name.endswith(_DEAD_LETTER_SUFFIX)


def _queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def _configured_urls(settings: Settings) -> list[str]:
    urls = [
        settings.recompute_queue_url,
        settings.push_queue_url,
        settings.verify_queue_url,
        settings.dead_letter_queue_url,
        settings.sweep_queue_url,
        settings.catalog_read_queue_url,
        settings.webhook_queue_url,
    ]
    return [url for url in urls if url]


def stack_prefix(names: list[str]) -> str:
    """The common start of the queue names, cut after its last ``-`` (``stocksync-prod-``); "" if they share none."""
    if not names:
        return ""
    shortest, longest = min(names), max(names)  # the common start of all is the common start of these two
    length = next((i for i, (a, b) in enumerate(zip(shortest, longest, strict=False)) if a != b), len(shortest))
    prefix = shortest[:length]
    return prefix[: prefix.rfind("-") + 1] if len(names) > 1 and "-" in prefix else ""


def of_stack(queue_name: str, prefix: str) -> bool:
    """``<prefix><LogicalId>-<suffix>``: a queue of this stack, not of one whose name merely starts alike
    (``stocksync-`` is also the start of stack ``stocksync-prod``'s ``stocksync-prod-PushQueue-1A2B``)."""
    return queue_name.startswith(prefix) and bool(_STACK_QUEUE.fullmatch(queue_name[len(prefix) :]))


def logical_name(queue_name: str, prefix: str) -> str:
    """``stocksync-prod-PushQueue-1A2B3C`` -> ``PushQueue``; a name without the stack's shape stays as it is."""
    if prefix and queue_name.startswith(prefix) and "-" in queue_name[len(prefix) :]:
        return queue_name[len(prefix) :].rsplit("-", 1)[0]
    return queue_name


def queue_urls(sqs: Any, settings: Settings) -> tuple[str, list[str]]:
    """(the stack's queue-name prefix, every queue URL of the stack); the configured URLs alone when the names share
    no prefix (queues created outside CloudFormation)."""
    configured = _configured_urls(settings)
    prefix = stack_prefix([_queue_name(url) for url in configured])
    if not prefix:
        return prefix, configured
    urls: list[str] = []
    paginator = sqs.get_paginator("list_queues")
    for page in paginator.paginate(QueueNamePrefix=prefix):
        urls.extend(url for url in page.get("QueueUrls", []) if of_stack(_queue_name(url), prefix))
    return prefix, sorted(urls, key=_queue_name) or configured


def queue_depths(sqs: Any, cloudwatch: Any, settings: Settings, *, now: datetime | None = None) -> list[QueueDepth]:
    """Every queue of the stack with its depths and (when CloudWatch knows it) the age of its oldest message."""
    prefix, urls = queue_urls(sqs, settings)
    depths = []
    for url in urls:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=_ATTRIBUTES)["Attributes"]
        name = _queue_name(url)
        depths.append(
            QueueDepth(
                name=logical_name(name, prefix),
                queue_name=name,
                url=url,
                visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
                in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
                delayed=int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
            )
        )
    ages = oldest_ages(cloudwatch, [depth.queue_name for depth in depths], now=now or datetime.now(UTC))
    return [QueueDepth(**{**depth.__dict__, "oldest_age_seconds": ages.get(depth.queue_name)}) for depth in depths]


def oldest_ages(cloudwatch: Any, queue_names: list[str], *, now: datetime) -> dict[str, float]:
    """Queue name -> the newest ``ApproximateAgeOfOldestMessage`` (seconds) of the last 15 minutes; queues without a
    datapoint are left out (unknown). CloudWatch runs on the wall clock, so ``now`` is the real time."""
    ages: dict[str, float] = {}
    for start in range(0, len(queue_names), _METRIC_QUERIES_PER_CALL):
        chunk = queue_names[start : start + _METRIC_QUERIES_PER_CALL]
        queries = [
            {
                "Id": f"q{index}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/SQS",
                        "MetricName": "ApproximateAgeOfOldestMessage",
                        "Dimensions": [{"Name": "QueueName", "Value": name}],
                    },
                    "Period": 60,
                    "Stat": "Maximum",
                },
                "ReturnData": True,
            }
            for index, name in enumerate(chunk)
        ]
        try:
            answer = cloudwatch.get_metric_data(
                MetricDataQueries=queries, StartTime=now - AGE_LOOKBACK, EndTime=now, ScanBy="TimestampDescending"
            )
        except (ClientError, BotoCoreError):
            continue  # no permission, or no CloudWatch (some local stacks): the ages stay unknown
        for result in answer.get("MetricDataResults", []):
            values = result.get("Values", [])
            if values:
                ages[chunk[int(result["Id"][1:])]] = float(values[0])
    return ages
