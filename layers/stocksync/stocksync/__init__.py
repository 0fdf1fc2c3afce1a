"""stocksync: keeps a Facebook/Instagram Shop catalog's stock accurate.

The package is shipped as a Lambda layer and installed as a normal package for tests and tools.
Rooms: ``models`` (pydantic shapes), ``logic`` (pure rules, no AWS), ``dal`` (DynamoDB repositories),
``integrations`` (Graph API, order sources, queues and bus), ``simulator`` (the Commerce Platform test double),
``local`` (moto server + template deploy for tests and the replay), ``cli``.
"""

__version__ = "0.1.0"
