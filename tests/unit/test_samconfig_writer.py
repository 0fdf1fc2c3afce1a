"""``tune --samconfig PATH --config-env NAME``: the recommendation lands in that environment's parameter_overrides,
merged with the overrides already there, the rest of the file kept byte for byte, and SAM reads it back as written."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from samcli.cli.types import CfnParameterOverridesType

from stocksync_dev.cli.main import main
from stocksync_dev.cli.samconfig_writer import (
    SamconfigError,
    overrides_string,
    parse_overrides,
    updated_text,
    write_parameter_overrides,
)

RECOMMENDED = {"FastThreshold": "1", "FastSweepRate": "rate(5 minutes)", "DeductionMode": "merchant"}
SAMCONFIG = """\
# the shop's deployments
version = 0.1

[default.global.parameters]
stack_name = "shop"

[default.deploy.parameters]
capabilities = "CAPABILITY_IAM"  # keep this comment
parameter_overrides = [
  "CatalogId=\\"1234\\"",
  "FastThreshold=3",
]
confirm_changeset = true

[prod.deploy.parameters]
stack_name = "shop-prod"
parameter_overrides = "ParameterKey=CatalogId,ParameterValue=99 AlarmEmail='ops@example.com'"
"""


def sam_reads(value: object) -> dict[str, str]:
    """What `sam deploy` makes of a parameter_overrides value (its own parser)."""
    return CfnParameterOverridesType().convert(value, None, None)


def overrides(text: str, env: str) -> object:
    return tomllib.loads(text)[env]["deploy"]["parameters"]["parameter_overrides"]


def test_the_recommendation_is_merged_into_the_environment_s_overrides_and_sam_reads_it() -> None:
    text = updated_text(SAMCONFIG, "default", RECOMMENDED)
    assert sam_reads(overrides(text, "default")) == {
        "CatalogId": "1234",  # kept
        "FastThreshold": "1",  # replaced
        "FastSweepRate": "rate(5 minutes)",
        "DeductionMode": "merchant",
    }


def test_nothing_else_of_the_file_changes() -> None:
    text = updated_text(SAMCONFIG, "default", RECOMMENDED)
    before, after = tomllib.loads(SAMCONFIG), tomllib.loads(text)
    before["default"]["deploy"]["parameters"].pop("parameter_overrides")
    after["default"]["deploy"]["parameters"].pop("parameter_overrides")
    assert after == before
    # Textually too: only the multi-line value became one line; comments and layout stay.
    old, new = SAMCONFIG.splitlines(), text.splitlines()
    assert new[:8] == old[:8]
    assert new[8].startswith("parameter_overrides = ")
    assert new[9:] == old[12:]


def test_the_other_string_form_is_read_and_rewritten_in_the_guided_form() -> None:
    text = updated_text(SAMCONFIG, "prod", {"FastThreshold": "0"})
    assert sam_reads(overrides(text, "prod")) == {
        "CatalogId": "99",
        "AlarmEmail": "ops@example.com",
        "FastThreshold": "0",
    }
    assert overrides(text, "prod") == 'CatalogId="99" AlarmEmail="ops@example.com" FastThreshold="0"'
    assert overrides(text, "default") == overrides(SAMCONFIG, "default")


def test_a_new_environment_is_appended_and_a_new_file_created(tmp_path: Path) -> None:
    text = updated_text(SAMCONFIG, "staging", RECOMMENDED)
    assert text.startswith(SAMCONFIG)
    assert sam_reads(overrides(text, "staging")) == RECOMMENDED
    path = tmp_path / "samconfig.toml"
    assert write_parameter_overrides(path, "default", RECOMMENDED) == RECOMMENDED
    document = tomllib.loads(path.read_text())
    assert document["version"] == 0.1
    assert sam_reads(document["default"]["deploy"]["parameters"]["parameter_overrides"]) == RECOMMENDED


def test_writing_twice_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "samconfig.toml"
    path.write_text(SAMCONFIG)
    write_parameter_overrides(path, "default", RECOMMENDED)
    once = path.read_text()
    write_parameter_overrides(path, "default", RECOMMENDED)
    assert path.read_text() == once
    assert parse_overrides(overrides(once, "default"), "x") == sam_reads(overrides(once, "default"))


@pytest.mark.parametrize(
    ("text", "env", "named"),
    [
        ("[default.deploy.parameters\n", "default", "not valid TOML"),
        ('[default.deploy.parameters]\nparameter_overrides = "file://params.json"\n', "default", "refers to a file"),
        ("[default.deploy.parameters]\nparameter_overrides = { A = 1 }\n", "default", "not a string or a list"),
        ('[default.deploy.parameters]\nparameter_overrides = "A=1 !!"\n', "default", "cannot read parameter_overrides"),
        # The environment defined in a form a header cannot be appended to: refused, not broken.
        ("[default]\ndeploy.parameters.stack_name = 'x'\n", "default", "set parameter_overrides by hand"),
        ("", "bad env", "--config-env"),
    ],
)
def test_what_cannot_be_edited_safely_is_refused_and_the_file_left_alone(
    tmp_path: Path, text: str, env: str, named: str
) -> None:
    path = tmp_path / "samconfig.toml"
    path.write_text(text)
    with pytest.raises(SamconfigError, match=named):
        write_parameter_overrides(path, env, RECOMMENDED)
    assert path.read_text() == text


def test_a_value_that_cannot_be_quoted_is_refused() -> None:
    with pytest.raises(SamconfigError):
        overrides_string({"Name": 'a"b'})


def test_tune_checks_the_samconfig_before_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "samconfig.toml"
    broken.write_text("[default\n")
    assert main(["tune", "--samconfig", str(broken), "--config-env", "default"]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert main(["tune", "--samconfig", str(broken)]) == 2
    assert "--samconfig and --config-env go together" in capsys.readouterr().err
