"""``stocksync tune HISTORY`` end to end on a small CSV export of orders: velocity measured, SKUs bucketed, every
strategy a real replay of the measured demand, the PNGs drawn and the recommendation merged into a samconfig.toml
environment that SAM reads back."""

from __future__ import annotations

import contextlib
import io
import json
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from samcli.cli.types import CfnParameterOverridesType

from stocksync_dev.cli import tune
from stocksync_dev.cli.main import main
from stocksync_dev.cli.order_history import measure, read_ledger_table
from stocksync_dev.local.aws import LocalAws
from tests.integration.test_order_events import deliver, publish

START = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
TARGET = 0.5


def history_csv() -> str:
    """One hour: HOT sells 12 units (more than its 5 in stock), CALM 2, SLOW 1, on both channels."""
    rows = ["order_id,placed_at,retailer_id,quantity,channel"]
    sales = [("HOT", minute * 5 + 2) for minute in range(12)] + [("CALM", 10), ("CALM", 40), ("SLOW", 25)]
    for number, (sku, minute) in enumerate(sales):
        placed = (START + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")
        rows.append(f"o{number},{placed},{sku},1,{'facebook' if number % 3 else 'web'}")
    return "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("tune_history")
    (folder / "orders.csv").write_text(history_csv())
    (folder / "stock.csv").write_text("retailer_id,warehouse\nHOT,5\nCALM,8\nSLOW,6\n")
    samconfig = folder / "samconfig.toml"
    samconfig.write_text('version = 0.1\n\n[prod.deploy.parameters]\nparameter_overrides = "CatalogId=\\"42\\""\n')
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(
            [
                "tune",
                str(folder / "orders.csv"),
                "--stock",
                str(folder / "stock.csv"),
                "--json",
                "--target",
                str(TARGET),
                "--candidates",
                "1",
                "--plot",
                str(folder / "plots"),
                "--samconfig",
                str(samconfig),
                "--config-env",
                "prod",
            ]
        )
    return {"code": code, "stdout": out.getvalue(), "stderr": err.getvalue(), "folder": folder}


def test_the_history_is_measured_and_every_strategy_replays_it(run: dict[str, Any]) -> None:
    assert run["code"] == 0, run["stderr"][-2000:]
    answer = json.loads(run["stdout"])
    assert set(answer["strategies"]) == set(tune.STRATEGIES)
    assert answer["history"]["units"] == 15
    assert answer["history"]["hours"] == 1
    # 12 and 2 units/h reach the template's fast floor (2), 1 unit/h its medium one (0.2): the product's rule.
    assert answer["history"]["skus_by_bucket"] == {"fast": 2, "medium": 1}
    assert answer["history"]["platform_share"] == pytest.approx(10 / 15)
    assert answer["demand_units"] > 0
    for name, figures in answer["strategies"].items():
        assert figures["sold_units"] > 0, name
        assert figures["sold_units"] + figures["undersold_units"] <= answer["demand_units"], name


def test_the_plots_are_drawn(run: dict[str, Any]) -> None:
    plots = run["folder"] / "plots"
    assert sorted(path.name for path in plots.iterdir()) == ["frontier.png", "stock_HOT.png"]
    for path in plots.iterdir():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_recommendation_is_merged_into_the_samconfig_environment(run: dict[str, Any]) -> None:
    answer = json.loads(run["stdout"])
    document = tomllib.loads((run["folder"] / "samconfig.toml").read_text())
    overrides = CfnParameterOverridesType().convert(
        document["prod"]["deploy"]["parameters"]["parameter_overrides"], None, None
    )
    assert overrides == {"CatalogId": "42", **answer["recommended"]}


def test_bad_history_exits_2_before_anything_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("order_id,placed_at,retailer_id,quantity\n")
    assert main(["tune", str(path)]) == 2
    assert f"{path}: the order history is empty" in capsys.readouterr().err


# -- the deployed ledger -------------------------------------------------------------------------------------


def shop_order(order_id: str, sku: str, quantity: int, occurred_at: str) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "state": "placed",
        "channel": "webshop",
        "items": [{"retailer_id": sku, "quantity": quantity}],
        "occurred_at": occurred_at,
    }


def test_the_history_is_read_from_the_ledger_the_product_wrote(
    local_aws: LocalAws, aws_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    table = aws_env["ORDERS_TABLE"]
    assert main(["tune", "--ledger-table", table, "--json"]) == 2  # emptied by the fixture
    assert f"--ledger-table {table}: the order history is empty" in capsys.readouterr().err

    publish(
        local_aws,
        shop_order("web-1", "HOT", 2, "2026-11-27T09:10:00Z"),
        shop_order("web-2", "CALM", 1, "2026-11-27T09:40:00Z"),
    )
    assert deliver(local_aws) == {"batchItemFailures": []}
    sales = sorted(read_ledger_table(local_aws.client("dynamodb"), table), key=lambda sale: sale.order_id)
    assert [(sale.order_id, sale.retailer_id, sale.quantity, sale.channel) for sale in sales] == [
        ("events:web-1", "HOT", 2, "web"),  # the ledger's ids are namespaced by source (docs/connectors.md)
        ("events:web-2", "CALM", 1, "web"),
    ]
    measured = measure(sales)
    assert {sku: velocity.units for sku, velocity in measured.skus.items()} == {"HOT": 2, "CALM": 1}


def test_a_ledger_table_that_cannot_be_read_exits_2(
    aws_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tune", "--ledger-table", "no-such-table", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "--ledger-table no-such-table: cannot be read" in captured.err
