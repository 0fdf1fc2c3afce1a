"""A replay's AWS calls take a real HTTP hop unless asked otherwise (--in-process, for large scenarios)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

from stocksync_dev.cli import replay
from stocksync_dev.cli.main import parser


def test_replays_and_their_stacks_go_over_http_by_default() -> None:
    assert inspect.signature(replay.replay_scenario).parameters["in_process"].default is False
    assert inspect.signature(replay.local_stack).parameters["in_process"].default is False


@pytest.mark.parametrize(("argv", "expected"), [([], False), (["--in-process"], True)])
def test_the_command_passes_its_transport_to_the_replay(
    argv: list[str], expected: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[bool] = []

    def fake_replay(scenario: Any, *, in_process: bool = False, **_options: Any) -> dict[str, Any]:
        seen.append(in_process)
        raise SystemExit(0)  # the transport is all this test is about

    scenario = Path(__file__).resolve().parents[2] / "events" / "scenarios" / "flash_sale.json"
    monkeypatch.setattr(replay, "replay_scenario", fake_replay)
    arguments = parser().parse_args(["replay", str(scenario), "--json", *argv])
    with pytest.raises(SystemExit):
        arguments.run(arguments)
    assert seen == [expected]
