"""README's table of scenario settings and the template parameters they stand for stays true.

A scenario names settings as the functions do (``threshold``, ``deduction_mode``), a deployment as ``sam deploy``
does (``FastThreshold``, ``DeductionMode``); the table is the one place a reader can translate. These checks keep it
complete (every field of the scenario models has a row) and right (every parameter it names exists and feeds the
setting it is listed against: the same key of the same bucket in STOCKSYNC_BUCKETS, or the Globals variable the row
names, which the replay sets the same way), so a renamed parameter or a new setting cannot leave it stale.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest

from stocksync_dev.cli.parameter_names import PARAMETER_NAMES, bucket_parameter
from stocksync_dev.cli.replay import _parameters, deployment_buckets
from stocksync_dev.cli.scenario import BucketOverride, PlatformSettings, ScenarioSettings, parse_scenario
from stocksync_dev.local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
HEADER = "| scenario key | template parameter | how the replay applies it |"
BUCKET_KEY = "settings.buckets.<b>."


@dataclass(frozen=True)
class Row:
    key: str
    parameter: str | None  # None: the row says the template has no parameter for it
    how: str


def table_rows() -> list[Row]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### The scenario format", 1)[1].split("\n## ", 1)[0]
    assert HEADER in section, "README's scenario format section lost the settings-to-parameters table"
    lines = section.split(HEADER, 1)[1].splitlines()[2:]  # past the header's separator line
    rows: list[Row] = []
    for line in lines:
        if not line.startswith("|"):
            break
        key, parameter, how = (cell.strip() for cell in line.strip("|").split("|"))
        named = re.fullmatch(r"`([^`]+)`", parameter)
        assert named or parameter == "none", f"{key}: a parameter in backticks, or none; got {parameter!r}"
        rows.append(Row(key.strip("`"), named.group(1) if named else None, how))
    return rows


ROWS = table_rows()
TEMPLATE = load_template()
PARAMETERS: dict[str, dict[str, Any]] = TEMPLATE["Parameters"]
GLOBALS: dict[str, Any] = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]


def bucket_parameters() -> dict[str, dict[str, str]]:
    """STOCKSYNC_BUCKETS as the template builds it, each value the name of the parameter substituted there."""
    text = GLOBALS["STOCKSYNC_BUCKETS"]["Fn::Sub"]
    marked = re.sub(r'"?\$\{(\w+)\}"?', r'"@\1"', text)
    return {
        bucket: {key: value.removeprefix("@") for key, value in settings.items() if str(value).startswith("@")}
        for bucket, settings in json.loads(marked).items()
    }


def test_every_scenario_setting_has_one_row() -> None:
    expected = (
        {f"settings.{name}" for name in ScenarioSettings.model_fields if name != "buckets"}
        | {f"{BUCKET_KEY}{name}" for name in BucketOverride.model_fields}
        | {f"platform.{name}" for name in PlatformSettings.model_fields}
    )
    keys = [row.key for row in ROWS]
    assert len(keys) == len(set(keys)), "a key has two rows"
    assert set(keys) == expected


def test_the_table_is_the_mapping_the_tools_use() -> None:
    """``stocksync tune`` writes its ``--parameter-overrides`` line from parameter_names: the same rows, the same
    names, so the checks on the table below hold for the line as well."""
    assert {row.key: row.parameter for row in ROWS} == PARAMETER_NAMES
    assert bucket_parameter("fast", "threshold") == "FastThreshold"
    assert bucket_parameter("medium", "sweep_rate") == "MediumSweepRate"
    assert bucket_parameter("slow", "allocation_percent") is None


@pytest.mark.parametrize("row", [row for row in ROWS if row.parameter], ids=lambda row: row.key)
def test_every_parameter_the_table_names_exists(row: Row) -> None:
    names = (
        [row.parameter.replace("<B>", bucket.capitalize()) for bucket in sorted(deployment_buckets())]
        if row.key.startswith(BUCKET_KEY)
        else [row.parameter]
    )
    assert row.key.startswith(BUCKET_KEY) == ("<B>" in row.parameter), f"{row.key}: <B> is for bucket keys only"
    missing = [name for name in names if name not in PARAMETERS]
    assert not missing, f"{row.key}: template.yaml has no parameter {missing}"


@pytest.mark.parametrize("row", [row for row in ROWS if row.key.startswith(BUCKET_KEY)], ids=lambda row: row.key)
def test_a_bucket_key_s_parameter_feeds_that_key_of_that_bucket(row: Row) -> None:
    """``<B>Threshold`` is substituted into STOCKSYNC_BUCKETS' ``threshold`` of bucket ``<b>``, for every deployment
    bucket; a key the table says has no parameter is not fed by any."""
    key = row.key.removeprefix(BUCKET_KEY)
    fed = bucket_parameters()
    assert set(fed) == deployment_buckets()
    for bucket, settings in fed.items():
        expected = row.parameter.replace("<B>", bucket.capitalize()) if row.parameter else None
        assert settings.get(key) == expected, f"STOCKSYNC_BUCKETS.{bucket}.{key}"


@pytest.mark.parametrize(
    "row",
    [row for row in ROWS if row.key.startswith("settings.") and row.parameter and "<B>" not in row.parameter],
    ids=lambda row: row.key,
)
def test_a_deployment_setting_s_parameter_is_the_variable_the_replay_sets(row: Row) -> None:
    """The row's variable is the parameter's (``!Ref`` in Globals), and a key the replay passes as a parameter
    override passes that parameter, with values the parameter accepts."""
    assert row.parameter is not None
    variable = re.search(r"`(STOCKSYNC_\w+)`", row.how)
    assert variable, f"{row.key}: the row names the variable the replay sets"
    assert GLOBALS[variable.group(1)] == {"Ref": row.parameter}
    name = row.key.removeprefix("settings.")
    allowed = PARAMETERS[row.parameter].get("AllowedValues")
    annotation = get_args(ScenarioSettings.model_fields[name].annotation)[0]  # X of ``X | None``
    choices = get_args(annotation) if get_origin(annotation) is Literal else ()
    if allowed is not None and choices:
        assert set(choices) == set(allowed), f"{row.key} accepts {choices}, {row.parameter} {allowed}"
    if "as the parameter" in row.how:
        value = choices[0] if choices else 0
        scenario = parse_scenario(
            {"settings": {name: value}, "skus": [{"retailer_id": "S", "warehouse": 1}], "steps": []}
        )
        assert _parameters(scenario) == {row.parameter: str(value)}


def test_a_default_bucket_may_name_every_bucket_the_parameter_allows() -> None:
    assert set(PARAMETERS["DefaultBucket"]["AllowedValues"]) == deployment_buckets()
