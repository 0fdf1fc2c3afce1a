"""CommercePlatformSimulator: a local stand-in for Meta's Commerce Platform, over real HTTP.

There is no sandbox of the Commerce Platform reachable from a developer machine or CI, so every test and benchmark
of stocksync that talks to "Meta" talks to this. It speaks the Graph API subset the product uses (orders,
acknowledgement, cancellation, items_batch, batch status, the products listing and single products) with Graph's
shapes, paging and errors, and it sells stock like the platform: buyers' orders are refused when too few units are
available, and uploads overwrite the quantity at a point inside their batch's processing delay (``batches.py``).
How orders are netted out of the uploaded quantity is the ``deduction_mode`` (``inventory.py``).

Tests and the replay configure and drive the platform side (products, orders, time, batch timing, deduction mode,
faults) through the constructor's keywords and the Python methods and properties below; every setting can be
changed at any time and applies from then on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from types import TracebackType
from typing import Any, Self

from stocksync_dev.simulator.batches import DEFAULT_APPLY_FRACTION, check_apply_fraction
from stocksync_dev.simulator.clock import whole_seconds
from stocksync_dev.simulator.control import ControlledGraphApi, SimulatorControl
from stocksync_dev.simulator.graph_api import GraphApi
from stocksync_dev.simulator.http_server import SimulatorHttpServer
from stocksync_dev.simulator.inventory import DeductionMode
from stocksync_dev.simulator.order_api_removal import check_removal_shape
from stocksync_dev.simulator.orders import CancelledBy, OrderState
from stocksync_dev.simulator.platform_state import PlatformState


class CommercePlatformSimulator:
    def __init__(
        self,
        *,
        catalog_id: str = "1001",
        cms_id: str = "2001",
        access_token: str = "sim-token",
        app_secret: str = "sim-app-secret",
        require_appsecret_proof: bool = True,
        page_size: int = 25,
        batch_calls_per_hour: int = 100,
        catalog_reads_per_hour: int = 20_000,
        batch_processing_delay: timedelta = timedelta(0),
        batch_apply_fraction: float | None = DEFAULT_APPLY_FRACTION,
        batch_apply_seed: int = 0,
        deduction_mode: str = DeductionMode.MERCHANT,
        start: datetime | None = None,
        log_requests: bool = False,
        order_api_removed_on: date | None = None,
        control_surface: bool = False,
    ) -> None:
        """The knobs after ``batch_calls_per_hour`` are described on the properties of the same names."""
        if page_size <= 0:
            raise ValueError(f"page_size must be positive, got {page_size}")
        self.catalog_id = catalog_id
        self.cms_id = cms_id
        self._state = PlatformState(
            whole_seconds(start or datetime.now(UTC)),
            batch_calls_per_hour,
            catalog_reads_per_hour=catalog_reads_per_hour,
        )
        self.batch_processing_delay = batch_processing_delay
        self.batch_apply_fraction = batch_apply_fraction
        self.batch_apply_seed = batch_apply_seed
        self.deduction_mode = deduction_mode
        self.order_api_removed_on = order_api_removed_on
        self._graph_api = GraphApi(
            self._state,
            catalog_id=catalog_id,
            cms_id=cms_id,
            access_token=access_token,
            app_secret=app_secret,
            require_appsecret_proof=require_appsecret_proof,
            page_size=page_size,
        )
        # ``control_surface`` serves /__simulator/... (control.py) beside Graph: for the standalone simulator only.
        front = ControlledGraphApi(self._graph_api, SimulatorControl(self)) if control_surface else self._graph_api
        self._server = SimulatorHttpServer(front, log_requests)

    # -- the HTTP server -------------------------------------------------------------------------------------

    def start(self, port: int = 0) -> Self:
        """Serve on 127.0.0.1 (port 0: a free port) from a daemon thread."""
        self._server.start("127.0.0.1", port)
        return self

    def stop(self) -> None:
        self._server.stop()

    @property
    def url(self) -> str:
        """The Graph base URL, e.g. ``http://127.0.0.1:PORT``; clients append ``/v25.0/...``."""
        return self._server.url

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # -- the platform's catalog and orders -------------------------------------------------------------------

    def add_product(
        self,
        retailer_id: str,
        quantity: int = 0,
        visibility: str = "published",
        name: str | None = None,
        price: str | None = None,
        **fields: Any,
    ) -> None:
        """Put a product in the platform's catalog (as a feed would); an existing retailer_id is a ValueError."""
        product_fields: dict[str, Any] = {**fields, "quantity_to_sell_on_facebook": quantity, "visibility": visibility}
        if name is not None:
            product_fields["name"] = name
        if price is not None:
            product_fields["price"] = price
        with self._state.transaction():
            self._state.add_product(retailer_id, product_fields)

    def edit_product(self, retailer_id: str, **fields: Any) -> None:
        """Change a product outside the product's pushes (an edit in Commerce Manager, another feed)."""
        with self._state.transaction():
            if retailer_id not in self._state.catalog:
                raise KeyError(retailer_id)
            self._state.catalog.update(retailer_id, fields)

    def catalog(self) -> dict[str, dict[str, Any]]:
        """A copy of the platform's catalog: ``{retailer_id: {"quantity_to_sell_on_facebook", "visibility", ...}}``."""
        with self._state.transaction():
            return self._state.catalog.snapshot()

    def place_order(self, order_id: str, lines: Iterable[tuple[str, int]], state: str = "FB_PROCESSING") -> None:
        """A buyer orders: every line is taken off the cached quantity, or the order is refused (OrderRefused)
        with no effect when a line asks for more than is left or the product is staging or unknown."""
        with self._state.transaction() as now:
            self._state.place_order(order_id, lines, OrderState(state), now)

    def move_order(self, order_id: str, state: str) -> None:
        """Move an order forward (the platform finishing its checks, the seller shipping)."""
        with self._state.transaction() as now:
            self._state.orders.move(order_id, OrderState(state), now)

    def cancel_order(
        self,
        order_id: str,
        items: Iterable[tuple[str, int]] | None = None,
        *,
        by: str = "buyer",
        restock_items: bool = False,
        reason_code: str = "CUSTOMER_REQUESTED",
        reason_description: str | None = None,
    ) -> None:
        """Cancel units (None: all that remain). Buyer cancellations always restock; seller ones only with
        ``restock_items``. Asking for more units than remain is an OrderActionRefused (a ValueError)."""
        with self._state.transaction() as now:
            self._state.cancel_order(
                order_id,
                None if items is None else list(items),
                cancelled_by=CancelledBy(by),
                restock_items=restock_items,
                reason_code=reason_code,
                reason_description=reason_description,
                now=now,
            )

    def orders(self) -> dict[str, dict[str, Any]]:
        """Copies of the platform's orders by id: state, times (``confirmed_at`` included), items with cancelled
        quantities, cancellations."""
        with self._state.transaction():
            return self._state.orders.snapshot()

    def available(self, retailer_id: str) -> int:
        """What a buyer can order of this product now: the cached quantity in the merchant deduction mode, the
        provided quantity less the units orders hold in the platform mode (0 for a product that is not published;
        a KeyError for an unknown one). Graph never shows this number."""
        with self._state.transaction() as now:
            product = self._state.catalog.get(retailer_id)
            if product is None:
                raise KeyError(retailer_id)
            return self._state.available(product, now) if product.visibility == "published" else 0

    def batches(self) -> dict[str, dict[str, Any]]:
        """Every accepted items_batch by handle, with its instants: ``accepted_at``, ``apply_at`` (when its rows
        overwrite the catalog), ``applied_at`` (None until then), ``ready_at`` (when it reports finished) and
        ``finished``. Simulator-only: Graph never says when a batch was applied."""
        with self._state.transaction():
            return self._state.batches.timelines()

    def cancel_batch(self, handle: str) -> None:
        """Test switch: the batch answers ``canceled`` from now on and its rows not applied yet never land."""
        with self._state.transaction() as now:
            self._state.batches.cancel(handle, now)

    def fail_batch(self, handle: str, message: str = "An unexpected error occurred") -> None:
        """Test switch: the batch answers ``error`` (``message`` first in its errors) from now on and its rows not
        applied yet never land."""
        with self._state.transaction() as now:
            self._state.batches.fail(handle, now, message)

    # -- simulated time --------------------------------------------------------------------------------------

    def now(self) -> datetime:
        with self._state.lock:
            return self._state.clock.now()

    def advance(self, seconds: float) -> datetime:
        """Move the simulated clock forward; batches due by then are processed at the next look."""
        with self._state.lock:
            return self._state.clock.advance(seconds)

    def set_clock(self, moment: datetime) -> datetime:
        """Jump the simulated clock forward to ``moment`` (never back: a ValueError)."""
        with self._state.lock:
            return self._state.clock.set(moment)

    # -- knobs and observation -------------------------------------------------------------------------------

    @property
    def batch_processing_delay(self) -> timedelta:
        """How long a batch accepted from now on takes from upload to ``finished`` (0 by default)."""
        with self._state.lock:
            return self._state.batches.processing_delay

    @batch_processing_delay.setter
    def batch_processing_delay(self, delay: timedelta) -> None:
        if delay < timedelta(0):
            raise ValueError(f"batch_processing_delay must not be negative, got {delay}")
        with self._state.lock:
            self._state.batches.processing_delay = delay

    @property
    def batch_apply_fraction(self) -> float | None:
        """Where inside its processing delay a batch accepted from now on is applied: a fraction in [0, 1] (0.5 by
        default), or None for a point drawn per batch from a generator seeded with ``batch_apply_seed``."""
        with self._state.lock:
            return self._state.batches.apply_fraction

    @batch_apply_fraction.setter
    def batch_apply_fraction(self, fraction: float | None) -> None:
        checked = check_apply_fraction(fraction)
        with self._state.lock:
            self._state.batches.apply_fraction = checked

    @property
    def batch_scheduled_fraction(self) -> float:
        """The share of its delay, from upload, during which a batch accepted from now on answers ``scheduled``
        (0 by default: no source says how long Meta keeps a batch scheduled)."""
        with self._state.lock:
            return self._state.batches.scheduled_fraction

    @batch_scheduled_fraction.setter
    def batch_scheduled_fraction(self, fraction: float) -> None:
        checked = check_apply_fraction(fraction)
        if checked is None:
            raise ValueError("batch_scheduled_fraction must be between 0 and 1, not None")
        with self._state.lock:
            self._state.batches.scheduled_fraction = checked

    @property
    def batch_apply_seed(self) -> int:
        """The seed of the random application points; setting it (even to the same value) restarts the sequence."""
        with self._state.lock:
            return self._state.batches.seed

    @batch_apply_seed.setter
    def batch_apply_seed(self, seed: int) -> None:
        with self._state.lock:
            self._state.batches.reseed(seed)

    @property
    def deduction_mode(self) -> str:
        """``merchant`` (the default: orders decrement the cached quantity, uploads overwrite it) or ``platform``
        (the provided quantity stays as uploaded; orders not yet confirmed, or confirmed less than 30 minutes ago,
        hold their units). See ``stocksync_dev.simulator.inventory``. Set it before the first order of a run."""
        with self._state.lock:
            return self._state.deduction_mode.value

    @deduction_mode.setter
    def deduction_mode(self, mode: str) -> None:
        try:
            checked = DeductionMode(mode)
        except ValueError:
            raise ValueError(f"deduction_mode must be one of {', '.join(DeductionMode)}, got {mode!r}") from None
        with self._state.lock:
            self._state.deduction_mode = checked

    @property
    def commerce_orders_removed(self) -> bool:
        """When true, every Graph version answers the commerce order endpoints with the removal error (#12)."""
        return self._graph_api.commerce_orders_removed

    @commerce_orders_removed.setter
    def commerce_orders_removed(self, removed: bool) -> None:
        self._graph_api.commerce_orders_removed = removed

    @property
    def order_api_removed_on(self) -> date | None:
        """The simulated day from which every version and unversioned path answers the order endpoints as removed
        (Meta's is 2026-10-27); None (the default) keeps them served on versions below v26.0."""
        with self._state.lock:
            return self._state.order_api.removed_on

    @order_api_removed_on.setter
    def order_api_removed_on(self, day: date | None) -> None:
        with self._state.lock:
            self._state.order_api.removed_on = day

    @property
    def order_api_blocked_from_v26_on(self) -> date | None:
        """The simulated day from which v26.0 and later answer the order endpoints as removed (2026-07-29 by
        default, as Meta's; None serves them there too)."""
        with self._state.lock:
            return self._state.order_api.blocked_from_v26_on

    @order_api_blocked_from_v26_on.setter
    def order_api_blocked_from_v26_on(self, day: date | None) -> None:
        with self._state.lock:
            self._state.order_api.blocked_from_v26_on = day

    @property
    def order_api_removal_shape(self) -> str:
        """How a removed order endpoint answers: ``deprecated`` (code 12, the default), ``nonexisting_field``
        (code 100), ``unsupported_request`` (code 100, subcode 33) or ``unknown_path`` (code 2500). Which one Meta
        sends is not documented."""
        with self._state.lock:
            return self._state.order_api.shape

    @order_api_removal_shape.setter
    def order_api_removal_shape(self, shape: str) -> None:
        checked = check_removal_shape(shape)
        with self._state.lock:
            self._state.order_api.shape = checked

    def throttle_after(
        self, n_calls: int, code: int = 4, regain_minutes: float = 1, endpoint: str | None = None
    ) -> None:
        """After ``n_calls`` more calls (to ``endpoint`` only, if given), answer the throttle ``code`` until the
        simulated clock passes the regain time, counted from the first throttled call."""
        with self._state.lock:
            self._state.faults.throttle_after(n_calls, code, regain_minutes, endpoint)

    def fail_next(self, k: int, status: int = 500, code: int = 2, endpoint: str | None = None) -> None:
        """The next ``k`` calls (to ``endpoint`` only, if given) fail with a transient Graph error."""
        with self._state.lock:
            self._state.faults.fail_next(k, status, code, endpoint)

    def revoke_access_token(self) -> None:
        """The access token stops working, as when the system user's token is revoked or its app loses access:
        every call with it is answered code 190 (a forced fetch of the credentials finds the same token)."""
        with self._state.lock:
            self._graph_api.revoke_access_token()

    def reset_faults(self) -> None:
        with self._state.lock:
            self._state.faults.reset()

    @property
    def calls(self) -> Counter[tuple[str, str]]:
        """A copy of the call counts by (HTTP method, last path segment); a product update is ``catalog_item``."""
        with self._state.lock:
            return Counter(self._graph_api.calls)

    @property
    def requests_log(self) -> list[tuple[str, str, dict[str, Any]]]:
        """A copy of every call as (method, path, params), with access_token and appsecret_proof removed."""
        with self._state.lock:
            return list(self._graph_api.requests_log)
