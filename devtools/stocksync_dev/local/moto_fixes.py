"""Where moto answers differently from AWS in a way the template depends on, made to answer as AWS does.

**Partner event buses.** A partner event bus is named after its partner event source, slashes and all
(``aws.partner/shopify.com/<app id>/<name>``), and EventBridge takes that name, or the bus's ARN, wherever it takes an
event bus (PutRule, PutTargets, PutEvents...). moto reads any ``EventBusName`` by keeping what follows its last
``/``, which is right for an ARN of an ordinary bus and wrong for every partner bus: the Shopify connector's rule
(template.yaml, ``ShopifyOrdersRule``) could not be created. Here an ARN keeps what follows ``event-bus/`` and a name
stays whole.
"""

from __future__ import annotations

import threading

from moto.events.models import EventsBackend

_lock = threading.Lock()
_installed = False


def _event_bus_name(self: EventsBackend, event_bus_arn: str | None) -> str:
    if event_bus_arn is None:
        return "default"
    if event_bus_arn.startswith("arn:"):
        return event_bus_arn.split(":event-bus/", 1)[-1]
    return event_bus_arn


def install() -> None:
    """Patch moto's EventBridge backend in this process (idempotent). moto server threads share it."""
    global _installed  # noqa: PLW0603
    with _lock:
        if _installed:
            return
        EventsBackend._normalize_event_bus_arn = _event_bus_name  # type: ignore[method-assign]
        _installed = True
