"""The HTTP transport: a threading server that hands each request to the Graph API front door.

HTTP/1.1 keep-alive with exact Content-Length lets a ``requests.Session`` reuse its connection; Nagle is off so a
small answer is not held back waiting for an ACK. Per-request log lines are off unless asked for, because
benchmarks send tens of thousands of requests.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from stocksync_dev.simulator.errors import internal_failure
from stocksync_dev.simulator.graph_api import GraphApi
from stocksync_dev.simulator.graph_request import GraphResponse, error_response

# How often the serving loop looks for a stop request: short, so tests that start and stop a server stay fast.
SHUTDOWN_POLL_SECONDS = 0.02


class _GraphHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], graph_api: GraphApi, log_requests: bool) -> None:
        super().__init__(address, _GraphRequestHandler)
        self.graph_api = graph_api
        self.log_requests = log_requests
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """End idle keep-alive connections, so their handler threads stop when the server does."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # the client closed it already
                connection.shutdown(socket.SHUT_RDWR)


class _GraphRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "CommercePlatformSimulator/1.0"
    disable_nagle_algorithm = True
    server: _GraphHttpServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        self.server.untrack(self.connection)
        super().finish()

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log_requests:
            super().log_message(format, *args)

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        try:
            response = self.server.graph_api.handle(
                self.command,
                self.path,
                content_type=self.headers.get("Content-Type"),
                authorization=self.headers.get("Authorization"),
                body=body,
                base_url=self.server.base_url,
            )
        except Exception:
            # A simulator bug: say so on stderr, answer like Graph's retryable unknown error.
            traceback.print_exc()
            response = error_response(internal_failure())
        self._send(response)

    def _send(self, response: GraphResponse) -> None:
        payload = json.dumps(response.body, separators=(",", ":")).encode()
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


class SimulatorHttpServer:
    """Runs the server on a daemon thread; port 0 picks a free port."""

    def __init__(self, graph_api: GraphApi, log_requests: bool) -> None:
        self._graph_api = graph_api
        self._log_requests = log_requests
        self._server: _GraphHttpServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the simulator is not running: call start() first")
        return self._server.base_url

    def start(self, host: str, port: int) -> None:
        if self._server is not None:
            raise RuntimeError("the simulator is already running")
        self._server = _GraphHttpServer((host, port), self._graph_api, self._log_requests)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
            name="commerce-simulator",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join()
        self._server = None
        self._thread = None
