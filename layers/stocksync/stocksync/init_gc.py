"""Cyclic garbage collection held off while a Lambda function's modules load, and what they loaded frozen after.

Why: a function's init imports boto3, pydantic, Powertools and its own modules, about 50 MB of objects that live as
long as the execution environment. The collector's passes during that import (several full ones) walk every one of
them and free nothing: 20-40 ms of each function's cold start, about 10 percent (bench/cold_start_bench.py, README
"Cold start"). ``gc.freeze()`` once they are loaded moves them to the permanent generation, so the collections an
invocation triggers do not walk them again either.

Only where Lambda runs the function (``LAMBDA_TASK_ROOT`` set, the variable Powertools Tracer also goes by): tests and
tools import handlers again and again in one long process, where freezing would keep every cycle alive that was
reachable at each import. A failed init leaves the collector off, which is harmless: Lambda discards the environment.
Every ``functions/<name>/app.py`` imports this module first and calls ``loaded()`` last
(tests/unit/test_init_gc.py keeps them so).
"""

from __future__ import annotations

import gc
import os

_IN_LAMBDA = "LAMBDA_TASK_ROOT" in os.environ

if _IN_LAMBDA:
    gc.disable()


def loaded() -> None:
    """The function's modules are loaded: freeze what they allocated and collect as usual from now on."""
    if _IN_LAMBDA and not gc.isenabled():
        gc.freeze()
        gc.enable()
