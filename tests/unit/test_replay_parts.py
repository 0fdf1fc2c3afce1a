"""Parts of the replay that need no stack: the schedule cadence read from template.yaml, and the cost figures read
from the handlers' summary log lines."""

from __future__ import annotations

import io
import logging
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_lambda_powertools import Logger

from stocksync.observability import logger
from stocksync_dev.cli.pipeline import discover, interval_seconds, scheduler_input
from stocksync_dev.cli.replay_report import LoopFigures, loop_figures
from stocksync_dev.local.aws import DEFAULT_PARAMETERS
from stocksync_dev.local.template import load_template, parameter_values


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(5 minutes)", 300),
        ("rate(1 minute)", 60),
        ("rate(2 hours)", 7200),
        ("rate(1 day)", 86400),
        ("cron(0/10 * * * ? *)", 600),
        ("cron(*/15 * * * ? *)", 900),
    ],
)
def test_a_schedule_with_one_interval_gives_it(expression: str, seconds: int) -> None:
    assert interval_seconds(expression) == seconds


@pytest.mark.parametrize("expression", ["cron(0 9 * * ? *)", "cron(0/5 8-17 ? * MON-FRI *)", "every 5 minutes"])
def test_a_schedule_without_one_interval_is_refused_by_name(expression: str) -> None:
    with pytest.raises(ValueError, match="no single interval"):
        interval_seconds(expression)


def test_the_poll_cadence_and_the_audit_input_come_from_the_template() -> None:
    """A deployment polls every PollRate; a replay must poll on the same cadence, so it reads the same parameter."""
    template = load_template()
    parameters = parameter_values(template, DEFAULT_PARAMETERS)
    resources = dict.fromkeys(template["Resources"], ("", ""))
    _consumers, schedules = discover(template, resources, parameters)
    poll = next(schedule for schedule in schedules if schedule.function == "poll_orders")
    assert poll.expression == parameters["PollRate"]
    audit = next(schedule for schedule in schedules if schedule.function == "audit_catalog")
    assert audit.expression == parameters["CatalogAuditRate"]
    assert audit.payload["scheduled_time"] == "<aws.scheduler.scheduled-time>"


def test_the_scheduler_context_attributes_are_filled_in() -> None:
    event = scheduler_input(
        {
            "dry_run": False,
            "scheduled_time": "<aws.scheduler.scheduled-time>",
            "execution_id": "<aws.scheduler.execution-id>",
        },
        datetime(2026, 12, 4, 9, 30, tzinfo=UTC),
    )
    assert event["dry_run"] is False
    assert event["scheduled_time"] == "2026-12-04T09:30:00Z"
    assert event["execution_id"] and not event["execution_id"].startswith("<")


class _FakeSimulator:
    """The call counter LoopFigures reads (``CommercePlatformSimulator.calls``, a copy at each read)."""

    def __init__(self) -> None:
        self.counted: Counter[tuple[str, str]] = Counter()

    @property
    def calls(self) -> Counter[tuple[str, str]]:
        return Counter(self.counted)


def test_the_figures_add_up_the_summary_lines_from_the_start_mark() -> None:
    sim = _FakeSimulator()
    sim.counted.update({("POST", "items_batch"): 3, ("GET", "products"): 1})
    figures = LoopFigures()
    source = Logger(service="figures-test", logger_handler=logging.NullHandler())
    source.addHandler(figures)
    source.info("recompute batch finished", push_reasons={"never confirmed": 2}, reads_requested=0)
    figures.start(sim)  # type: ignore[arg-type]  # what came before (the initial publish) is not counted
    source.info(
        "recompute batch finished", push_reasons={"catalog differs": 2, "catalog ambiguous": 1}, reads_requested=3
    )
    source.info("sweep finished", push_reasons={"catalog differs": 1}, reads_requested=1)
    source.info("catalog read-back finished", read=4, calls=2, settled=3, drifted=1, deferred=0)
    source.info("catalog audit finished", read=10, pages=1, drifted=2, finished=True)
    source.info("push finished", push_reasons={"catalog differs": 99})  # not a decision: not counted
    sim.counted.update({("POST", "items_batch"): 2, ("GET", "products"): 3, ("GET", "product_item"): 1})

    figures_now: dict[str, Any] = figures.as_dict(sim)  # type: ignore[arg-type]
    assert figures_now["pushes_by_reason"] == {"catalog ambiguous": 1, "catalog differs": 3}
    assert (figures_now["pushes"], figures_now["ambiguity_pushes"]) == (4, 1)
    assert figures_now["ambiguity_share_of_pushes"] == 0.25
    assert figures_now["reads_requested"] == 4
    assert figures_now["read_back"] == {"runs": 1, "read": 4, "calls": 2, "settled": 3, "drifted": 1}
    assert figures_now["audits"] == {"runs": 1, "finished": 1, "read": 10, "pages": 1, "drifted": 2}
    assert (figures_now["items_batch_calls"], figures_now["read_calls"]) == (2, 4)


def test_collecting_the_figures_leaves_what_the_log_shows_unchanged() -> None:
    """A quiet replay shows warnings only: the INFO summary lines reach the figures, not the stream."""
    target = logging.getLogger(logger.name)
    level = target.level
    stream = io.StringIO()
    shown = logging.StreamHandler(stream)
    target.addHandler(shown)
    target.setLevel(logging.WARNING)
    try:
        with loop_figures() as figures:
            logger.info("recompute batch finished", push_reasons={"catalog differs": 1}, reads_requested=0)
            logger.warning("over-selling detected")
        assert figures.pushes_by_reason == {"catalog differs": 1}
        assert "over-selling detected" in stream.getvalue()
        assert "recompute batch finished" not in stream.getvalue()
        assert target.level == logging.WARNING and shown.level == logging.NOTSET
        assert figures not in target.handlers
    finally:
        target.removeHandler(shown)
        target.setLevel(level)
