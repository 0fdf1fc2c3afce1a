"""The standalone simulator's control surface over HTTP (``/__simulator/...``) and its command-line flags."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
import requests

from stocksync_dev.cli import simulate
from stocksync_dev.simulator import CommercePlatformSimulator
from stocksync_dev.simulator.__main__ import add_arguments, build

TOKEN = "control-token"
START = datetime(2026, 10, 26, 12, tzinfo=UTC)


@pytest.fixture
def sim() -> Iterator[CommercePlatformSimulator]:
    with CommercePlatformSimulator(
        access_token=TOKEN,
        require_appsecret_proof=False,
        start=START,
        order_api_removed_on=date(2026, 10, 27),
        control_surface=True,
    ) as sim:
        sim.add_product("MUG", quantity=5)
        yield sim


def control(sim: CommercePlatformSimulator, path: str, **params: object) -> requests.Response:
    return requests.post(f"{sim.url}/__simulator/{path}", data=params, timeout=10)


def orders(sim: CommercePlatformSimulator, version: str = "v25.0") -> requests.Response:
    return requests.get(f"{sim.url}/{version}/{sim.cms_id}/commerce_orders", params={"access_token": TOKEN}, timeout=10)


def test_the_settings_are_shown_without_a_token(sim: CommercePlatformSimulator) -> None:
    answer = requests.get(f"{sim.url}/__simulator", timeout=10)
    assert answer.status_code == 200
    assert answer.json()["now"] == START.isoformat()
    assert answer.json()["order_api"] == {
        "removed_on": "2026-10-27",
        "blocked_from_v26_on": "2026-07-29",
        "shape": "deprecated",
    }
    assert sim.calls == {}  # not a Graph call


def test_the_clock_moves_forward_and_the_removal_date_follows_it(sim: CommercePlatformSimulator) -> None:
    assert orders(sim).status_code == 200
    moved = control(sim, "clock", advance_seconds=12 * 3600)
    assert moved.status_code == 200 and moved.json()["now"] == "2026-10-27T00:00:00+00:00"
    assert orders(sim).json()["error"]["code"] == 12

    assert control(sim, "order_api", removed_on="never").json()["order_api"]["removed_on"] == "never"
    assert orders(sim).status_code == 200
    assert control(sim, "order_api", removed_on="2026-11-01", shape="unknown_path").status_code == 200
    jumped = requests.post(f"{sim.url}/__simulator/clock", json={"set": "2026-12-04T09:00:00+00:00"}, timeout=10)
    assert jumped.json()["now"] == "2026-12-04T09:00:00+00:00" and sim.now() == datetime(2026, 12, 4, 9, tzinfo=UTC)
    assert orders(sim).json()["error"]["code"] == 2500

    back = control(sim, "clock", set="2026-01-01T00:00:00+00:00")
    assert back.status_code == 400 and "only moves forward" in back.json()["error"]["message"]


def test_throttles_failures_and_batch_timing_are_armed_from_outside(sim: CommercePlatformSimulator) -> None:
    assert control(sim, "throttle", after_calls=1, code=80004, regain_minutes=2, endpoint="commerce_orders").ok
    assert orders(sim).status_code == 200
    throttled = orders(sim)
    assert throttled.json()["error"]["code"] == 80004
    assert control(sim, "faults/reset").ok
    assert orders(sim).status_code == 200

    assert control(sim, "fail", next=2, status=503, code=2).ok
    assert [orders(sim).status_code for _ in range(3)] == [503, 503, 200]

    settings = control(sim, "batches", processing_seconds=90, apply_fraction="random", apply_seed=7).json()
    assert settings["batches"] == {
        "processing_seconds": 90.0,
        "apply_fraction": "random",
        "apply_seed": 7,
        "scheduled_fraction": 0.0,
    }
    assert sim.batch_processing_delay == timedelta(seconds=90) and sim.batch_apply_fraction is None
    assert control(sim, "batches", apply_fraction=0.25).json()["batches"]["apply_fraction"] == 0.25


def test_a_batch_can_be_made_to_end_canceled_or_in_error_and_to_report_scheduled(
    sim: CommercePlatformSimulator,
) -> None:
    assert (
        control(sim, "batches", processing_seconds=60, scheduled_fraction=0.5).json()["batches"]["scheduled_fraction"]
        == 0.5
    )

    def upload() -> str:
        rows = json.dumps([{"method": "UPDATE", "data": {"id": "MUG", "quantity_to_sell_on_facebook": 1}}])
        answer = requests.post(
            f"{sim.url}/v25.0/{sim.catalog_id}/items_batch",
            data={"access_token": TOKEN, "item_type": "PRODUCT_ITEM", "requests": rows},
            timeout=10,
        )
        return str(answer.json()["handles"][0])

    def status(handle: str) -> str:
        answer = requests.get(
            f"{sim.url}/v25.0/{sim.catalog_id}/check_batch_request_status",
            params={"access_token": TOKEN, "handle": handle},
            timeout=10,
        )
        return str(answer.json()["data"][0]["status"])

    canceled, failed = upload(), upload()
    assert status(canceled) == "scheduled"
    assert control(sim, "batch", handle=canceled, outcome="canceled").ok
    assert control(sim, "batch", handle=failed, outcome="error", message="disk full").ok
    assert (status(canceled), status(failed)) == ("canceled", "error")
    assert sim.catalog()["MUG"]["quantity_to_sell_on_facebook"] == 5  # neither batch's row ever landed
    refused = control(sim, "batch", handle="nope", outcome="canceled")
    assert refused.status_code == 400 and "nope" in refused.json()["error"]["message"]


@pytest.mark.parametrize(
    ("path", "params", "status", "words"),
    [
        ("clock", {}, 400, "one of advance_seconds or set"),
        ("clock", {"advance_seconds": "soon"}, 400, "must be a number"),
        ("clock", {"set": "2026-12-04T09:00:00"}, 400, "UTC offset"),
        ("order_api", {"shape": "vanished"}, 400, "removal shape"),
        ("order_api", {"removed_on": "tomorrow"}, 400, "YYYY-MM-DD"),
        ("throttle", {"code": 999}, 400, "throttle code"),
        ("throttle", {"after": 1}, 400, "unknown parameter(s) after"),
        ("batches", {"apply_fraction": 2}, 400, "apply_fraction"),
        ("warp", {}, 404, "no control path"),
    ],
)
def test_a_bad_control_request_is_refused_naming_what_is_wrong(
    sim: CommercePlatformSimulator, path: str, params: dict[str, object], status: int, words: str
) -> None:
    answer = control(sim, path, **params)
    assert answer.status_code == status
    assert words in answer.json()["error"]["message"]
    assert requests.get(f"{sim.url}/__simulator/clock", timeout=10).status_code == 405


def test_an_embedded_simulator_has_no_control_path() -> None:
    with CommercePlatformSimulator(access_token=TOKEN, require_appsecret_proof=False, start=START) as sim:
        answer = requests.post(
            f"{sim.url}/__simulator/clock", data={"advance_seconds": 60, "access_token": TOKEN}, timeout=10
        )
        assert answer.status_code == 400 and "error" in answer.json()  # a Graph refusal, as for any unknown node
        assert sim.now() == START


def test_the_command_line_flags_reach_the_simulator() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [
            "--start",
            "2026-09-01T00:00:00+00:00",
            "--order-api-removed-on",
            "never",
            "--removal-shape",
            "nonexisting_field",
            "--batch-processing-seconds",
            "30",
            "--batch-apply-fraction",
            "random",
        ]
    )
    sim = build(args)
    assert sim.now() == datetime(2026, 9, 1, tzinfo=UTC)
    assert sim.order_api_removed_on is None and sim.order_api_removal_shape == "nonexisting_field"
    assert sim.batch_processing_delay == timedelta(seconds=30) and sim.batch_apply_fraction is None
    defaults = build(parser.parse_args([]))
    assert defaults.order_api_removed_on == date(2026, 10, 27)
    assert defaults.order_api_blocked_from_v26_on == date(2026, 7, 29)

    subparsers = argparse.ArgumentParser().add_subparsers()
    cli = simulate.add_parser(subparsers)
    assert cli.parse_args(["--order-api-removed-on", "2026-11-02", "--no-control"]).order_api_removed_on == date(
        2026, 11, 2
    )
