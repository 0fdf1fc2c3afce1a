"""The template check (tools/check_template.py) catches what `sam validate --lint` and `cfn-lint` let through.

Each test breaks one thing in a copy of the real template.yaml and asserts the check fails naming it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stocksync.local.checks import template_problems
from stocksync.local.template import REPO_ROOT, TEMPLATE_PATH

# An SQS-triggered function, declared as the product's functions are; the tests break it in their copy.
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


def broken_copy(tmp_path: Path, old: str, new: str, *, in_function: bool = False) -> Path:
    """template.yaml plus FUNCTION, with ``old`` (which must occur exactly once in the template, or in FUNCTION
    when ``in_function``) replaced by ``new``; written next to links to the real code folders.
    """
    template = TEMPLATE_PATH.read_text(encoding="utf-8")
    function = FUNCTION
    if in_function:
        assert function.count(old) == 1, f"the mutation {old!r} no longer applies"
        function = function.replace(old, new)
    else:
        assert template.count(old) == 1, f"the mutation {old!r} no longer applies to template.yaml"
        template = template.replace(old, new)
    (tmp_path / "template.yaml").write_text(template.replace("\nResources:\n", "\nResources:" + function, 1))
    (tmp_path / "layers").symlink_to(REPO_ROOT / "layers")
    (tmp_path / "functions" / "check_probe").mkdir(parents=True)
    for folder in (REPO_ROOT / "functions").iterdir():
        if folder.is_dir():
            (tmp_path / "functions" / folder.name).symlink_to(folder)
    return tmp_path / "template.yaml"


def assert_caught(path: Path, start: str, location: str) -> None:
    """The check fails; every problem is this one (it may show once per function); one is reported at location."""
    problems = template_problems(path)
    assert problems, "the check let the broken template through"
    assert all(problem.startswith(start) for problem in problems), problems
    assert any(f"(at {location}" in problem for problem in problems), problems


def test_the_real_template_passes() -> None:
    assert template_problems(TEMPLATE_PATH) == []


def test_the_unbroken_copy_passes(tmp_path: Path) -> None:
    path = broken_copy(tmp_path, "Handler: app.lambda_handler", "Handler: app.lambda_handler", in_function=True)
    assert template_problems(path) == []


@pytest.mark.parametrize(
    ("old", "new", "start", "location"),
    [
        pytest.param("SKU_TABLE: !Ref SkuTable", "SKU_TABLE: !Ref SkuTabel",
                     "E1020 'SkuTabel' is not one of", "Globals/Function/Environment/Variables/SKU_TABLE/Ref",
                     id="in-the-globals-environment"),
        pytest.param("Value: !Ref OrdersTable", "Value: !Ref OrderTable",
                     "E6101 'OrderTable' is not one of", "Outputs/OrdersTableName/Value/Ref", id="in-an-output"),
    ],
)  # fmt: skip
def test_a_ref_to_a_missing_resource_is_named(tmp_path: Path, old: str, new: str, start: str, location: str) -> None:
    assert_caught(broken_copy(tmp_path, old, new), start, location)


@pytest.mark.parametrize(
    ("mutation", "in_function", "start", "location"),
    [
        pytest.param(("deadLetterTargetArn: !GetAtt PushDeadLetterQueue.Arn",
                      "deadLetterTargetArn: !GetAtt PushDeadLetterQueue.Url"), False,
                     "E1010 'Url' is not one of", "Resources/PushQueue/Properties/RedrivePolicy/deadLetterTargetArn",
                     id="unknown-attribute"),
        pytest.param(("EVENT_BUS_NAME: !GetAtt StockSyncBus.Name", "EVENT_BUS_NAME: !GetAtt StockSyncBuss.Name"), False,
                     "E1010 'StockSyncBuss' is not one of", "Globals/Function/Environment/Variables/EVENT_BUS_NAME",
                     id="unknown-resource"),
        pytest.param(("Queue: !GetAtt PushQueue.Arn", "Queue: !GetAtt PushQeue.Arn"), True,
                     "E1010 'PushQeue' is not one of", "Resources/CheckProbeFunctionMessages/Properties/EventSourceArn",
                     id="unknown-resource-in-a-function-event"),
    ],
)  # fmt: skip
def test_a_bad_getatt_is_named(
    tmp_path: Path, mutation: tuple[str, str], in_function: bool, start: str, location: str
) -> None:
    assert_caught(broken_copy(tmp_path, *mutation, in_function=in_function), start, location)


def test_a_misspelled_batch_failure_reporting_is_named(tmp_path: Path) -> None:
    # A misspelled value: the function would never report partial failures, and whole batches would be retried.
    path = broken_copy(tmp_path, "[ReportBatchItemFailures]", "[ReportBatchFailures]", in_function=True)
    assert_caught(
        path,
        "E3030 'ReportBatchFailures' is not one of ['ReportBatchItemFailures']",
        "Resources/CheckProbeFunctionMessages/Properties/FunctionResponseTypes/0",
    )


def test_a_misspelled_event_property_is_named(tmp_path: Path) -> None:
    path = broken_copy(tmp_path, "FunctionResponseTypes:", "FunctionResponseType:", in_function=True)
    assert template_problems(path) == [
        "SAM transform: Resource with id [CheckProbeFunctionMessages] is invalid. "
        "property FunctionResponseType not defined for resource of type SQS"
    ]


@pytest.mark.parametrize(
    ("old", "new", "location"),
    [
        pytest.param("    Runtime: python3.13\n", "    Runtime: python3.99\n", "Globals/Function/Runtime",
                     id="globals"),
        pytest.param("CompatibleRuntimes: [python3.13]", "CompatibleRuntimes: [python3.99]",
                     "Resources/StockSyncLayer", id="layer"),
    ],
)  # fmt: skip
def test_a_nonexistent_runtime_is_named(tmp_path: Path, old: str, new: str, location: str) -> None:
    assert_caught(broken_copy(tmp_path, old, new), "E3030 'python3.99' is not one of", location)


def test_a_missing_code_folder_is_named(tmp_path: Path) -> None:
    path = broken_copy(tmp_path, "CodeUri: functions/check_probe", "CodeUri: functions/check-probe", in_function=True)
    problems = template_problems(path)
    assert len(problems) == 1
    assert problems[0].startswith("CheckProbeFunction: code folder ")
    assert problems[0].endswith("functions/check-probe does not exist")


def test_the_command_exits_1_and_prints_each_problem_with_the_file(tmp_path: Path) -> None:
    path = broken_copy(tmp_path, "SKU_TABLE: !Ref SkuTable", "SKU_TABLE: !Ref SkuTabel")
    environment = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}
    command = [sys.executable, str(REPO_ROOT / "tools" / "check_template.py"), str(path)]
    result = subprocess.run(command, capture_output=True, text=True, env=environment, check=False, timeout=120)
    assert result.returncode == 1
    assert result.stderr.startswith(f"{path}: E1020 'SkuTabel'")
