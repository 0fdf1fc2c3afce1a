"""Tracing, as a deployed function has it on: the AWS and Graph calls are patched, and nothing else is loaded for it.

In a child interpreter: Powertools Tracer is on only where Lambda sets LAMBDA_TASK_ROOT, and patching is global.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

CHILD = """
import json, sys
import stocksync.observability as observability
import botocore.client
seen = {"disabled": observability.tracer.disabled, "requests_loaded": "requests" in sys.modules,
        "botocore": type(botocore.client.BaseClient._make_api_call).__name__}
import requests
from aws_xray_sdk.core.patcher import _PATCHED_MODULES
seen.update(requests=type(requests.Session.request).__name__, patched=sorted(_PATCHED_MODULES))
print(json.dumps(seen))
"""


def run_child(**environment: str) -> dict[str, object]:
    env = {
        key: value for key, value in os.environ.items() if key not in ("LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE_DISABLED")
    }
    env.update(AWS_DEFAULT_REGION="us-east-1", **environment)
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_in_lambda_aws_calls_are_traced_from_the_start_and_graph_requests_once_requests_is_imported() -> None:
    seen = run_child(LAMBDA_TASK_ROOT="/var/task")
    assert seen["disabled"] is False
    assert seen["botocore"] == "BoundFunctionWrapper"  # X-Ray's wrapper around every AWS API call
    assert seen["requests_loaded"] is False  # a function that never calls Graph does not load requests to patch it
    assert seen["requests"] == "BoundFunctionWrapper"
    assert seen["patched"] == ["botocore", "requests"]  # and nothing else (patch_all also patched sqlite3...)


def test_outside_lambda_nothing_is_patched() -> None:
    seen = run_child()
    assert seen["disabled"] is True
    assert seen["botocore"] == "function"
    assert seen["requests"] == "function"
    assert seen["patched"] == []
