"""Which function each sample under events/ is for (README, "Sample events"), and what `replay --function` refuses
before anything runs: one line, no traceback (issue 17)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from stocksync_dev.cli import samples
from stocksync_dev.cli.progress import Progress
from stocksync_dev.local.template import REPO_ROOT

EVENTS = REPO_ROOT / "events"
README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def test_every_sample_event_is_listed_with_a_function_that_exists() -> None:
    files = {path.name for path in EVENTS.glob("*.json")}
    assert files == set(samples.SAMPLES)
    for name, sample in samples.SAMPLES.items():
        function = sample.via if sample.function == samples.BUS else sample.function
        assert function in samples.functions(), name
        event = json.loads((EVENTS / name).read_text())
        if sample.function == samples.BUS:
            assert samples.event_kind(event) == "bus", name
        else:  # the kind of event template.yaml invokes that function with
            assert samples.event_kind(event) in samples.accepted_kinds(sample.function), name


def test_the_readme_table_names_the_same_function_for_every_sample() -> None:
    rows = dict(re.findall(r"^\| `events/([a-z_]+\.json)` \| ([^|]+) \|", README, flags=re.MULTILINE))
    assert set(rows) == set(samples.SAMPLES)
    for name, sample in samples.SAMPLES.items():
        wanted = f"bus -> `{sample.via}`" if sample.function == samples.BUS else f"`{sample.function}`"
        assert rows[name].strip() == wanted, name


def test_the_readme_scenario_snippet_is_the_shipped_file() -> None:
    shipped = (EVENTS / "scenarios" / "readme_example.json").read_text(encoding="utf-8")
    blocks = re.findall(r"```json\n(.*?)```", README, flags=re.DOTALL)
    assert shipped in blocks


@pytest.mark.parametrize(
    ("sample", "function", "says"),
    [
        ("push_queue_batch.json", "nope", "unknown function 'nope': one of assign_buckets,"),
        ("push_queue_batch.json", "order_events", "push_queue_batch.json is push_batch's sample, not order_events'"),
        ("order_changed_bus_event.json", "order_events", "give order_events one of order_events_sqs_batch.json"),
        ("sku_settings_changed.json", "recompute_stock", "its rule queues it for recompute_stock"),
    ],
)
def test_a_mismatched_sample_or_unknown_function_is_refused_in_one_line(sample: str, function: str, says: str) -> None:
    path = EVENTS / sample
    with pytest.raises(samples.SampleMismatch) as refused:
        samples.check(path, json.loads(path.read_text()), function)
    assert says in str(refused.value) and "\n" not in str(refused.value)


def test_an_event_of_the_wrong_kind_is_refused_even_outside_events(tmp_path: Path) -> None:
    """A file of one's own is checked by its shape: a bus event is never how order_events is invoked."""
    own = tmp_path / "mine.json"
    event = json.loads((EVENTS / "order_changed_bus_event.json").read_text())
    own.write_text(json.dumps(event))
    with pytest.raises(samples.SampleMismatch, match=r"mine\.json is an EventBridge event, and template\.yaml invokes"):
        samples.check(own, event, "order_events")
    batch = json.loads((EVENTS / "order_events_sqs_batch.json").read_text())
    with pytest.raises(samples.SampleMismatch, match="is an SQS batch"):
        samples.check(own, batch, "reconcile")
    assert samples.check(own, batch, "order_events") is None  # the right kind: invoked


def test_a_matching_sample_passes_with_its_note() -> None:
    path = EVENTS / "order_events_sqs_batch.json"
    sample = samples.check(path, json.loads(path.read_text()), "order_events")
    assert sample is not None and "bad on purpose" in sample.note


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_line_is_rewritten_in_place_on_a_terminal_and_cleared() -> None:
    terminal = _Terminal()
    progress = Progress(terminal)
    progress.update("deploying")
    progress.update("step 1 of 2 (order)")
    progress.done()
    written = terminal.getvalue()
    assert (
        written.startswith("\r\033[Kstocksync: deploying (") and "\r\033[Kstocksync: step 1 of 2 (order) (" in written
    )
    assert written.endswith("\r\033[K") and "\n" not in written


class _ThreeTicks:
    """A stop event whose wait() lets the ticker run twice, then stops it: no real time passes in the test."""

    def __init__(self) -> None:
        self.waits = 0

    def wait(self, timeout: float) -> bool:
        self.waits += 1
        return self.waits > 2

    def set(self) -> None:
        pass


def test_the_progress_line_keeps_counting_during_a_long_step() -> None:
    terminal = _Terminal()
    progress = Progress(terminal, ticking=False)
    progress.update("deploying")
    progress._stop = _ThreeTicks()  # type: ignore[assignment]
    progress._redraw()  # what the ticker thread runs
    progress.done()
    assert terminal.getvalue().count("stocksync: deploying") == 3  # drawn by update(), then redrawn twice
    assert terminal.getvalue().endswith("\r\033[K")


def test_no_progress_line_reaches_a_pipe_or_a_file() -> None:
    piped = io.StringIO()  # not a terminal
    progress = Progress(piped)
    progress.update("deploying")
    progress.done()
    assert piped.getvalue() == ""
