"""Logger, Tracer and Metrics shared by every handler, so logs, traces and EMF metrics look the same everywhere.

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE (template
Globals). Nothing here logs a secret: the Graph client redacts tokens before anything reaches a logger.

Tracing (``Tracing: Active`` in the template) patches the two libraries the functions call out through: botocore
(every AWS call) at once, and requests (the Graph API client) when a function imports it. Tracer's default, the
X-Ray SDK's ``patch_all``, would import requests into every function, the half that never calls Graph too, and try
a dozen libraries no function uses (sqlite3, SQLAlchemy, psycopg, pymongo...), all at every cold start (README,
"Cold start"). The traces are the same: every AWS call and every Graph request still gets its subsegment. Add a
library here when a function starts calling out through it. Outside Lambda (tests, tools) Tracer disables itself
and patches nothing.
"""

from __future__ import annotations

import os

import wrapt
from aws_lambda_powertools import Logger, Metrics, Tracer

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "stocksync")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "StockSync")

# Patched when the tracer starts: every function calls AWS.
TRACED_AT_START = ("botocore",)
# Patched when first imported (at once if already imported): only some functions call out through them.
TRACED_WHEN_IMPORTED = ("requests",)

logger = Logger()
tracer = Tracer(patch_modules=TRACED_AT_START)
metrics = Metrics()


def _trace_when_imported(library: str) -> None:
    @wrapt.when_imported(library)
    def _patch(_module: object) -> None:
        tracer.patch(modules=[library])


for _library in TRACED_WHEN_IMPORTED:
    _trace_when_imported(_library)
