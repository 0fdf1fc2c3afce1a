"""Where moto answers differently from AWS in a way the template depends on, made to answer as AWS does.

**Partner event buses.** A partner event bus is named after its partner event source, slashes and all
(``aws.partner/shopify.com/<app id>/<name>``), and EventBridge takes that name, or the bus's ARN, wherever it takes an
event bus (PutRule, PutTargets, PutEvents...). moto reads any ``EventBusName`` by keeping what follows its last
``/``, which is right for an ARN of an ordinary bus and wrong for every partner bus: the Shopify connector's rule
(template.yaml, ``ShopifyOrdersRule``) could not be created. Here an ARN keeps what follows ``event-bus/`` and a name
stays whole.

**Rules that target an SNS topic.** EventBridge delivers to a topic (template.yaml's ``OverSellingRule`` sends each
"Over-Selling Detected" event to the alarm topic); moto's rule raises NotImplementedError for a target it does not
deliver to, which fails the whole PutEvents, so the recompute's over-selling event could not even be put locally.
Here a rule hands its SNS targets' events (after the target's input transformer, as EventBridge does) to moto's SNS,
which delivers them to the topic's subscribers, and its other targets to moto as before.

**A rule that cannot deliver stops no other rule.** EventBridge delivers to each rule's targets on its own: a target
that is gone (a queue deleted with an earlier stack) is that rule's failed delivery (retried, then its dead-letter
queue), never the caller's error nor another rule's loss. moto delivers rule after rule in one loop and raises at the
first failure; for S3's notifications it then swallows the error, so every later rule on the account's buses missed
the event (an S3 upload never reached the snapshot queue once an earlier test's stack had left a rule behind). Here a
rule's failed delivery is logged and the next rule still gets the event.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from typing import Any

from moto.events.models import EventsBackend, EventTemplateParser, Rule
from moto.sns.models import sns_backends
from moto.utilities.arns import parse_arn

_lock = threading.Lock()
_installed = False
_log = logging.getLogger(__name__)


def _event_bus_name(self: EventsBackend, event_bus_arn: str | None) -> str:
    if event_bus_arn is None:
        return "default"
    if event_bus_arn.startswith("arn:"):
        return event_bus_arn.split(":event-bus/", 1)[-1]
    return event_bus_arn


_moto_send_to_targets = Rule.send_to_targets


def _send_to_targets(self: Rule, original_event: Any, transform_input: bool = True) -> None:
    try:
        _deliver(self, original_event, transform_input)
    except Exception as error:  # one rule's failed delivery: EventBridge keeps it to that rule
        _log.warning("rule %s could not deliver an event: %s: %s", self.name, type(error).__name__, error)


def _deliver(self: Rule, original_event: Any, transform_input: bool) -> None:
    topics = [target for target in self.targets if parse_arn(target["Arn"]).service == "sns"]
    if not topics:
        _moto_send_to_targets(self, original_event, transform_input)
        return
    if not self.event_pattern.matches_event(original_event):
        return
    others = copy.copy(self)
    others.targets = [target for target in self.targets if target not in topics]
    _moto_send_to_targets(others, original_event, transform_input)
    for target in topics:
        event = original_event
        if transform_input:
            transformer = target.get("InputTransformer", {})
            event = EventTemplateParser.parse(
                input_template=transformer.get("InputTemplate"),
                input_paths_map=transformer.get("InputPathsMap", {}),
                event=original_event,
            )
        arn = parse_arn(target["Arn"])
        message = event if isinstance(event, str) else json.dumps(event)
        sns_backends[arn.account][arn.region].publish(message=message, arn=target["Arn"])


def install() -> None:
    """Patch moto's EventBridge backend in this process (idempotent). moto server threads share it."""
    global _installed  # noqa: PLW0603
    with _lock:
        if _installed:
            return
        EventsBackend._normalize_event_bus_arn = _event_bus_name  # type: ignore[method-assign]
        Rule.send_to_targets = _send_to_targets  # type: ignore[method-assign]
        _installed = True
