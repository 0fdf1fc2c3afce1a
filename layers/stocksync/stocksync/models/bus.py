"""The envelope of an EventBridge event as an SQS target receives it (the whole event, JSON, in the body)."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from stocksync.models.base import Model


class BusEvent(Model):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    id: str = ""
    detail_type: str = Field(alias="detail-type", min_length=1)
    source: str = ""
    detail: dict[str, Any]
