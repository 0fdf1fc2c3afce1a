"""The template check (tools/check_template.py) catches what `sam validate --lint` and `cfn-lint` let through.

A copy of the real template.yaml gets every break below at once (linting the whole template takes seconds, so it
is linted once), and each test asserts its break is reported, where it is, with nothing reported that no break
explains. A misspelled event property stops the SAM transform itself, so it gets a copy of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from stocksync_dev.local.checks import template_problems
from stocksync_dev.local.template import REPO_ROOT, TEMPLATE_PATH

# An SQS-triggered function, declared as the product's functions are; some breaks are made in it.
FUNCTION = """
  CheckProbeFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/check_probe
      Handler: app.lambda_handler
      Events:
        Messages:
          Type: SQS
          Properties:
            Queue: !GetAtt PushQueue.Arn
            FunctionResponseTypes: [ReportBatchItemFailures]
"""


@dataclass(frozen=True)
class Break:
    old: str  # must occur exactly once in the template (or in FUNCTION when in_function)
    new: str
    reported_as: str  # how each problem it causes starts
    at: str  # where one of them is located
    in_function: bool = False


BREAKS = {
    "ref-to-nothing-in-the-globals-environment": Break(
        "SKU_TABLE: !Ref SkuTable", "SKU_TABLE: !Ref SkuTabel",
        "E1020 'SkuTabel' is not one of", "Globals/Function/Environment/Variables/SKU_TABLE/Ref"),
    "ref-to-nothing-in-an-output": Break(
        "Value: !Ref OrdersTable", "Value: !Ref OrderTable",
        "E6101 'OrderTable' is not one of", "Outputs/OrdersTableName/Value/Ref"),
    "getatt-of-an-unknown-attribute": Break(
        "deadLetterTargetArn: !GetAtt PushDeadLetterQueue.Arn", "deadLetterTargetArn: !GetAtt PushDeadLetterQueue.Url",
        "E1010 'Url' is not one of", "Resources/PushQueue/Properties/RedrivePolicy/deadLetterTargetArn"),
    "getatt-of-nothing-in-the-globals-environment": Break(
        "EVENT_BUS_NAME: !GetAtt StockSyncBus.Name", "EVENT_BUS_NAME: !GetAtt StockSyncBuss.Name",
        "E1010 'StockSyncBuss' is not one of", "Globals/Function/Environment/Variables/EVENT_BUS_NAME"),
    "getatt-of-nothing-in-a-function-event": Break(
        "Queue: !GetAtt PushQueue.Arn", "Queue: !GetAtt PushQeue.Arn",
        "E1010 'PushQeue' is not one of", "Resources/CheckProbeFunctionMessages/Properties/EventSourceArn",
        in_function=True),
    # A misspelled value: the function would never report partial failures, and whole batches would be retried.
    "misspelled-report-batch-item-failures": Break(
        "[ReportBatchItemFailures]", "[ReportBatchFailures]",
        "E3030 'ReportBatchFailures' is not one of ['ReportBatchItemFailures']",
        "Resources/CheckProbeFunctionMessages/Properties/FunctionResponseTypes/0", in_function=True),
    "nonexistent-runtime-in-globals": Break(
        "    Runtime: python3.13\n", "    Runtime: python3.99\n",
        "E3030 'python3.99' is not one of", "Globals/Function/Runtime"),
    "nonexistent-runtime-of-the-layer": Break(
        "CompatibleRuntimes: [python3.13]", "CompatibleRuntimes: [python3.88]",
        "E3030 'python3.88' is not one of", "Resources/StockSyncLayer"),
    "missing-code-folder": Break(
        "CodeUri: functions/check_probe", "CodeUri: functions/check-probe",
        "CheckProbeFunction: code folder", "functions/check-probe does not exist", in_function=True),
}  # fmt: skip


def broken_copy(root: Path, breaks: list[Break]) -> Path:
    """template.yaml plus FUNCTION with ``breaks`` made, written next to links to the real code folders."""
    template, function = TEMPLATE_PATH.read_text(encoding="utf-8"), FUNCTION
    for change in breaks:
        text = function if change.in_function else template
        assert text.count(change.old) == 1, f"the break {change.old!r} no longer applies"
        if change.in_function:
            function = function.replace(change.old, change.new)
        else:
            template = template.replace(change.old, change.new)
    (root / "template.yaml").write_text(template.replace("\nResources:\n", "\nResources:" + function, 1))
    (root / "layers").symlink_to(REPO_ROOT / "layers")
    (root / "functions" / "check_probe").mkdir(parents=True)
    for folder in (REPO_ROOT / "functions").iterdir():
        if folder.is_dir():
            (root / "functions" / folder.name).symlink_to(folder)
    return root / "template.yaml"


@pytest.fixture(scope="module")
def problems(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """What the check reports for a copy with every break of BREAKS."""
    return template_problems(broken_copy(tmp_path_factory.mktemp("broken"), list(BREAKS.values())))


def test_the_real_template_passes() -> None:
    assert template_problems(TEMPLATE_PATH) == []


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_each_break_is_reported_where_it_is(problems: list[str], name: str) -> None:
    change = BREAKS[name]
    caused = [problem for problem in problems if problem.startswith(change.reported_as)]
    assert caused, f"{name} went through: {problems}"
    assert any(change.at in problem for problem in caused), caused


def test_nothing_is_reported_that_no_break_explains(problems: list[str]) -> None:
    unexplained = [p for p in problems if not any(p.startswith(b.reported_as) for b in BREAKS.values())]
    assert unexplained == []


def test_a_misspelled_event_property_stops_the_transform_with_its_name(tmp_path: Path) -> None:
    path = broken_copy(tmp_path, [Break("FunctionResponseTypes:", "FunctionResponseType:", "", "", in_function=True)])
    assert template_problems(path) == [
        "SAM transform: Resource with id [CheckProbeFunctionMessages] is invalid. "
        "property FunctionResponseType not defined for resource of type SQS"
    ]


MINIMAL_BROKEN_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Queue:
    Type: AWS::SQS::Queue
Outputs:
  QueueUrl:
    Value: !Ref Queu
"""


def test_the_command_exits_1_and_prints_each_problem_after_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(MINIMAL_BROKEN_TEMPLATE, encoding="utf-8")
    environment = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}
    command = [sys.executable, str(REPO_ROOT / "tools" / "check_template.py"), str(path)]
    result = subprocess.run(command, capture_output=True, text=True, env=environment, check=False, timeout=300)
    assert result.returncode == 1
    assert result.stderr.startswith(f"{path}: E6101 'Queu' is not one of ['Queue'")
