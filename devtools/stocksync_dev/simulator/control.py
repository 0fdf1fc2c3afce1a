"""The standalone simulator's control surface: ``/__simulator/...`` on the simulator's own port, never on Graph.

Graph has no such path (``__simulator`` is neither a version nor an object id), and the surface exists only when the
simulator is started with it (``python -m stocksync_dev.simulator`` and ``stocksync simulate`` do; tests that embed the
simulator use its Python methods instead). It takes no access token: it is a local test double's switchboard.

Parameters come as a form (``curl -d name=value``), a JSON object body, or the query string; every answer is JSON,
the simulator's settings after the change (``GET /__simulator`` shows them without changing anything). A bad value is
a 400 naming it, an unknown control path a 404.

===========================  ===================================================================================
``POST /__simulator/clock``  ``advance_seconds=N`` moves the simulated clock forward; ``set=ISO-8601`` jumps to a
                             later time (never back: batches and throttles count on a clock that only moves on)
``POST .../order_api``       ``removed_on=YYYY-MM-DD|never``, ``blocked_from_v26_on=YYYY-MM-DD|never``,
                             ``shape=deprecated|nonexisting_field|unsupported_request|unknown_path``
``POST .../throttle``        ``after_calls``, ``code`` (4, 17, 32, 613, 80001, 80004, 80009, 80014),
                             ``regain_minutes``, ``endpoint`` (optional: the last path segment)
``POST .../fail``            ``next`` calls fail with ``status`` (500) and ``code`` (2), ``endpoint`` optional
``POST .../faults/reset``    clears the armed throttle and failures
``POST .../batches``         ``processing_seconds``, ``apply_fraction`` (0..1, or ``random``), ``apply_seed``,
                             ``scheduled_fraction`` (0..1: the share of the delay a batch reports ``scheduled``)
``POST .../batch``           ``handle`` and ``outcome=canceled|error`` (``message`` for an error): the batch ends so,
                             its rows not yet applied never land
===========================  ===================================================================================
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from stocksync_dev.simulator.graph_request import GraphResponse

if TYPE_CHECKING:
    from stocksync_dev.simulator.commerce_platform import CommercePlatformSimulator
    from stocksync_dev.simulator.graph_api import GraphApi

CONTROL_PREFIX = "/__simulator"
NEVER = "never"


class ControlError(ValueError):
    """A control request the simulator cannot carry out; answered 400 (or ``status``) with the message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def is_control_path(target: str) -> bool:
    path = target.partition("?")[0].rstrip("/")
    return path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/")


class ControlledGraphApi:
    """What the HTTP server calls: ``/__simulator/...`` goes to the control surface, everything else to Graph."""

    def __init__(self, graph_api: GraphApi, control: SimulatorControl) -> None:
        self._graph_api = graph_api
        self._control = control

    def handle(
        self,
        method: str,
        target: str,
        *,
        content_type: str | None,
        authorization: str | None,
        body: bytes,
        base_url: str,
    ) -> GraphResponse:
        if is_control_path(target):
            return self._control.handle(method, target, content_type=content_type, body=body)
        return self._graph_api.handle(
            method, target, content_type=content_type, authorization=authorization, body=body, base_url=base_url
        )


class SimulatorControl:
    def __init__(self, sim: CommercePlatformSimulator) -> None:
        self._sim = sim
        self._actions: dict[str, Callable[[dict[str, Any]], None]] = {
            "clock": self._clock,
            "order_api": self._order_api,
            "throttle": self._throttle,
            "fail": self._fail,
            "faults/reset": lambda _: sim.reset_faults(),
            "batches": self._batches,
            "batch": self._batch,
        }

    def handle(self, method: str, target: str, *, content_type: str | None, body: bytes) -> GraphResponse:
        raw_path, _, query = target.partition("?")
        action = raw_path.rstrip("/")[len(CONTROL_PREFIX) :].strip("/")
        try:
            if action == "":
                if method != "GET":
                    raise ControlError("GET /__simulator shows the settings; changes go to its sub-paths", 405)
                return GraphResponse(200, self.settings())
            handler = self._actions.get(action)
            if handler is None:
                known = ", ".join(f"{CONTROL_PREFIX}/{name}" for name in self._actions)
                raise ControlError(f"no control path {raw_path}; known: {known}", 404)
            if method != "POST":
                raise ControlError(f"{raw_path} takes POST", 405)
            handler(_params(query, content_type, body))
        except ControlError as error:
            return GraphResponse(error.status, {"error": {"message": str(error), "type": "SimulatorControlError"}})
        except (ValueError, KeyError) as error:  # the simulator's own refusal (a clock moved back, a bad code)
            return GraphResponse(400, {"error": {"message": str(error), "type": "SimulatorControlError"}})
        return GraphResponse(200, self.settings())

    def settings(self) -> dict[str, Any]:
        sim = self._sim
        removed_on, blocked_on = sim.order_api_removed_on, sim.order_api_blocked_from_v26_on
        return {
            "now": sim.now().isoformat(),
            "order_api": {
                "removed_on": removed_on.isoformat() if removed_on else NEVER,
                "blocked_from_v26_on": blocked_on.isoformat() if blocked_on else NEVER,
                "shape": sim.order_api_removal_shape,
            },
            "batches": {
                "processing_seconds": sim.batch_processing_delay.total_seconds(),
                "apply_fraction": "random" if sim.batch_apply_fraction is None else sim.batch_apply_fraction,
                "apply_seed": sim.batch_apply_seed,
                "scheduled_fraction": sim.batch_scheduled_fraction,
            },
            "deduction_mode": sim.deduction_mode,
            "calls": sum(sim.calls.values()),
        }

    def _clock(self, params: dict[str, Any]) -> None:
        _only(params, {"advance_seconds", "set"})
        if ("advance_seconds" in params) == ("set" in params):
            raise ControlError("give one of advance_seconds or set")
        if "set" in params:
            self._sim.set_clock(_moment(params["set"]))
        else:
            self._sim.advance(_number(params, "advance_seconds"))

    def _order_api(self, params: dict[str, Any]) -> None:
        _only(params, {"removed_on", "blocked_from_v26_on", "shape"})
        if not params:
            raise ControlError("give removed_on, blocked_from_v26_on or shape")
        if "shape" in params:
            self._sim.order_api_removal_shape = str(params["shape"])
        if "removed_on" in params:
            self._sim.order_api_removed_on = _day(params, "removed_on")
        if "blocked_from_v26_on" in params:
            self._sim.order_api_blocked_from_v26_on = _day(params, "blocked_from_v26_on")

    def _throttle(self, params: dict[str, Any]) -> None:
        _only(params, {"after_calls", "code", "regain_minutes", "endpoint"})
        self._sim.throttle_after(
            int(_number(params, "after_calls", 0)),
            code=int(_number(params, "code", 4)),
            regain_minutes=_number(params, "regain_minutes", 1),
            endpoint=params.get("endpoint") or None,
        )

    def _fail(self, params: dict[str, Any]) -> None:
        _only(params, {"next", "status", "code", "endpoint"})
        self._sim.fail_next(
            int(_number(params, "next", 1)),
            status=int(_number(params, "status", 500)),
            code=int(_number(params, "code", 2)),
            endpoint=params.get("endpoint") or None,
        )

    def _batches(self, params: dict[str, Any]) -> None:
        _only(params, {"processing_seconds", "apply_fraction", "apply_seed", "scheduled_fraction"})
        if not params:
            raise ControlError("give processing_seconds, apply_fraction, apply_seed or scheduled_fraction")
        if "scheduled_fraction" in params:
            self._sim.batch_scheduled_fraction = _number(params, "scheduled_fraction")
        if "processing_seconds" in params:
            self._sim.batch_processing_delay = timedelta(seconds=_number(params, "processing_seconds"))
        if "apply_fraction" in params:
            random = str(params["apply_fraction"]).lower() in {"random", "none", "null"}
            self._sim.batch_apply_fraction = None if random else _number(params, "apply_fraction")
        if "apply_seed" in params:
            self._sim.batch_apply_seed = int(_number(params, "apply_seed"))

    def _batch(self, params: dict[str, Any]) -> None:
        _only(params, {"handle", "outcome", "message"})
        handle, outcome = str(params.get("handle") or ""), params.get("outcome")
        if not handle:
            raise ControlError("give the batch's handle")
        if outcome == "canceled" and "message" not in params:
            self._sim.cancel_batch(handle)
        elif outcome == "error":
            self._sim.fail_batch(handle, str(params.get("message") or "An unexpected error occurred"))
        else:
            raise ControlError("outcome must be canceled or error (message goes with error only)")


def _params(query: str, content_type: str | None, body: bytes) -> dict[str, Any]:
    params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    if not body:
        return params
    if (content_type or "").split(";")[0].strip().lower() == "application/json":
        try:
            parsed = json.loads(body)
        except ValueError as error:
            raise ControlError("the body is not valid JSON") from error
        if not isinstance(parsed, dict):
            raise ControlError("a JSON body must be an object")
        return {**params, **parsed}
    return {**params, **dict(parse_qsl(body.decode(), keep_blank_values=True))}


def _only(params: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ControlError(f"unknown parameter(s) {', '.join(unknown)}; this path takes {', '.join(sorted(allowed))}")


def _number(params: dict[str, Any], name: str, default: float | None = None) -> float:
    value = params.get(name, default)
    if value is None:
        raise ControlError(f"{name} is required")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ControlError(f"{name} must be a number, got {value!r}") from None


def _day(params: dict[str, Any], name: str) -> date | None:
    value = params[name]
    if value is None or str(value).lower() == NEVER:
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ControlError(f"{name} must be a date (YYYY-MM-DD) or {NEVER}, got {value!r}") from None


def _moment(value: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise ControlError(f"set must be an ISO-8601 time with an offset, got {value!r}") from None
    if moment.tzinfo is None:
        raise ControlError(f"set must carry a UTC offset (e.g. 2026-12-04T09:00:00+00:00), got {value!r}")
    return moment
