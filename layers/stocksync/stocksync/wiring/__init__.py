"""Each function's composition root: ``wiring/<function>.py`` is where that Lambda function's parts are built.

``functions/<name>/app.py`` is the Lambda entry (Powertools' Logger, Tracer and Metrics around one call); the
module of the same name here reads, for every invocation, the same way: parse the event, build the parts from the
settings, run the use case (in ``logic/``), report (metrics and one log line), return the answer. The modules import
``logic/`` and the adapters (``dal/``, ``integrations/``), never each other: what several functions build alike is
in ``parts.py``, ``recompute_parts.py`` and ``catalog_parts.py``. docs/design.md, "Architecture", has the rule.
"""
