"""stocksync: keeps a Facebook/Instagram Shop catalog's stock accurate.

The package is shipped as a Lambda layer and installed as a normal package for tests and tools.
Rooms (docs/design.md, "Architecture"): ``wiring`` (one composition root per function), ``dal`` (DynamoDB and S3
repositories), ``integrations`` (Graph API, order sources, shop connectors, queues and bus), ``logic`` (pure rules, no
AWS), ``models`` (pydantic shapes at the edges). What only people run (the simulator, the local AWS stack, the CLI)
is the separate ``stocksync_dev`` package, never in the layer.
"""

__version__ = "0.1.0"
