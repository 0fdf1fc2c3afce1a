"""Garbage collection at a function's init: off while its modules load, frozen and back on after, in Lambda only."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = sorted((ROOT / "functions").glob("*/app.py"))

CHILD = """
import gc, json
import stocksync.init_gc as init_gc
during = gc.isenabled()
import boto3, pydantic  # what a function loads
init_gc.loaded()
print(json.dumps({"during": during, "after": gc.isenabled(), "frozen": gc.get_freeze_count()}))
"""


def run_child(**extra: str) -> dict[str, object]:
    environment = {key: value for key, value in os.environ.items() if key != "LAMBDA_TASK_ROOT"} | extra
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=environment, capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_in_lambda_the_collector_is_off_while_loading_then_on_with_the_loaded_objects_frozen() -> None:
    seen = run_child(LAMBDA_TASK_ROOT="/var/task")
    assert seen["during"] is False
    assert seen["after"] is True
    assert isinstance(seen["frozen"], int) and seen["frozen"] > 10_000  # boto3 and pydantic's objects


def test_outside_lambda_nothing_changes() -> None:
    assert run_child() == {"during": True, "after": True, "frozen": 0}


@pytest.mark.parametrize("app", APPS, ids=lambda path: path.parent.name)
def test_every_function_imports_it_first_and_calls_loaded_last(app: Path) -> None:
    body = ast.parse(app.read_text(encoding="utf-8")).body
    statements = [
        node
        for node in body
        if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))  # the docstring
        and not (isinstance(node, ast.ImportFrom) and node.module == "__future__")
    ]
    first, last = statements[0], statements[-1]
    assert isinstance(first, ast.ImportFrom) and first.module == "stocksync"
    assert [alias.name for alias in first.names] == ["init_gc"]
    assert ast.unparse(last) == "init_gc.loaded()"
