"""The base of every pydantic model the product defines: schemas built on first use, not at import.

A function imports many models it never validates in a given invocation (the Graph models in a function that only
reads DynamoDB, the order models in one that only pushes). Building a model's validator costs 1-5 ms each; with
``defer_build`` pydantic builds it the first time the model validates or serialises, so a cold start pays only for
the models the function uses (README, "Cold start").
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    model_config = ConfigDict(defer_build=True)
