"""botocore calls to the local moto server, answered in this process by the server's own WSGI application.

Every boto3 call to moto's server costs a new TCP connection (werkzeug's development server closes each one), a new
server thread and two HTTP parses, on top of moto's own work: a replay of 12,000 SKUs makes some 150,000 calls
(issue 12). Everything runs in one process anyway (the handlers, moto's server threads, the simulator), so a call to
a routed endpoint is handed to the very application the server would hand it to: the WSGI environ is built by moto's
request handler (``MotoRequestHandler.make_environ``, the one the server uses, with its header rules), and the
answer carries the status, headers and body the server would have written, plus the ``Server`` and ``Date`` headers
it adds. moto, Flask and the request parsing are the same; only the socket is gone.
tests/integration/test_replay_scale_in_process.py compares answers over the wire and in process.

Only endpoints routed here (``route``) are answered in process; every other URL goes out over HTTP as before.
"""

from __future__ import annotations

import http.client
import logging
import threading
import traceback
from email.utils import formatdate
from io import BytesIO
from typing import Any
from urllib.parse import urlsplit

import urllib3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.httpsession import URLLib3Session
from moto.moto_server.werkzeug_app import MotoRequestHandler
from werkzeug.exceptions import InternalServerError
from werkzeug.serving import BaseWSGIServer

_routes: dict[str, BaseWSGIServer] = {}  # "http://127.0.0.1:PORT" -> the server whose application answers
_lock = threading.Lock()
_original_send = URLLib3Session.send


class _Body(BytesIO):
    """The response body, readable as botocore reads urllib3's (``read``, ``stream``)."""

    def stream(self, amt: int | None = 2**16, decode_content: bool | None = None) -> Any:
        while chunk := self.read(amt):
            yield chunk


def route(endpoint_url: str, server: BaseWSGIServer) -> None:
    """Answer calls to ``endpoint_url`` with ``server``'s application, in the calling thread."""
    with _lock:
        if URLLib3Session.send is _original_send:
            URLLib3Session.send = _send  # type: ignore[method-assign]
        _routes[endpoint_url.rstrip("/")] = server


def unroute(endpoint_url: str) -> None:
    with _lock:
        _routes.pop(endpoint_url.rstrip("/"), None)


def _send(self: URLLib3Session, request: AWSPreparedRequest) -> AWSResponse:
    parts = urlsplit(request.url)
    server = _routes.get(f"{parts.scheme}://{parts.netloc}") if _routes else None
    if server is None:
        return _original_send(self, request)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return answer(server, request, target, parts.netloc)


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    data = body.read()  # a file-like body (botocore rewinds it itself before a retry)
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def _run(app: Any, environ: dict[str, Any], start_response: Any, chunks: list[bytes]) -> None:
    result = app(environ, start_response)
    try:
        chunks.extend(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


def answer(server: BaseWSGIServer, request: AWSPreparedRequest, target: str, host: str) -> AWSResponse:
    """What ``server`` would answer to ``request``: the environ its request handler builds, its application's
    status, headers and body (none for HEAD, as the client reads none)."""
    body = _body_bytes(request.body)
    headers = http.client.HTTPMessage()
    for name, value in request.headers.items():
        headers[name] = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    # What http.client adds on the wire when botocore has not set them.
    if "Host" not in headers:
        headers["Host"] = host
    if "Accept-Encoding" not in headers:
        headers["Accept-Encoding"] = "identity"
    if body and "Content-Length" not in headers and "Transfer-Encoding" not in headers:
        headers["Content-Length"] = str(len(body))
    handler = MotoRequestHandler.__new__(MotoRequestHandler)
    handler.server = server
    handler.path = target
    handler.command = request.method
    handler.request_version = "HTTP/1.1"
    handler.client_address = ("127.0.0.1", 0)
    handler.headers = headers
    handler.rfile = BytesIO(body)
    handler.connection = None
    environ = handler.make_environ()

    started: list[Any] = []
    chunks: list[bytes] = []

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if exc_info and started:
            raise exc_info[1].with_traceback(exc_info[2])
        started[:] = [status, response_headers]
        return chunks.append

    try:
        _run(server.app, environ, start_response, chunks)
    except Exception:  # as the server does: log the traceback, answer werkzeug's 500 page
        logging.getLogger("werkzeug").error("Error on request:\n%s", traceback.format_exc())
        started.clear()
        chunks.clear()
        _run(InternalServerError(), environ, start_response, chunks)
    status, response_headers = started
    answer_headers = urllib3.HTTPHeaderDict()
    for name, value in response_headers:
        answer_headers.add(name, value)
    if "Server" not in answer_headers:
        answer_headers.add("Server", handler.version_string())
    if "Date" not in answer_headers:
        answer_headers.add("Date", formatdate(usegmt=True))
    content = b"" if request.method == "HEAD" else b"".join(chunks)
    return AWSResponse(request.url, int(status.split(None, 1)[0]), answer_headers, _Body(content))
