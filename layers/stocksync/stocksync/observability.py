"""Logger, Tracer and Metrics shared by every handler, so logs, traces and EMF metrics look the same everywhere.

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE (template
Globals). Nothing here logs a secret: the Graph client redacts tokens before anything reaches a logger.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "stocksync")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "StockSync")

logger = Logger()
tracer = Tracer()
metrics = Metrics()
