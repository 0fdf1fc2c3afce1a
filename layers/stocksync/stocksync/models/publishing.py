"""What a queue or bus publisher answers: the entries sent and the ones refused. A model, not an adapter's type,
because the use cases (logic/) decide what to do with a refused entry, and logic never imports an adapter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class PublishReceipt:
    """Entries sent, and the ones that failed with the service's code and message."""

    sent: int = 0
    failed: list[tuple[Mapping[str, Any], str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed
