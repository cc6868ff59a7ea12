"""A real HTTP server on loopback that speaks the OpenAI chat completions protocol, for the
``kind: llm`` tests.

``POST /v1/chat/completions`` takes JSON and answers with what the test scripted: a queue of
:class:`Reply` (status, headers such as ``retry-after-ms``, a JSON body or raw bytes, an
optional delay before answering), then ``otherwise`` (a reply for every request after the
queue is empty; by default a 500 saying nothing was scripted). Every request is recorded
(when it arrived, its path, headers and JSON body). The server listens on 127.0.0.1 with a
port the system picks, serves from a background thread, and :meth:`LlmServer.stop` ends it:
delays still running are cut short and every handler thread is joined.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["PATH", "LlmServer", "Reply", "Request", "chat", "error", "serve"]

PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class Reply:
    """One scripted answer: ``body`` is JSON (a dict or list), or raw ``bytes`` sent as they
    are; ``delay`` seconds pass before the status line is sent."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    content_type: str = "application/json"


@dataclass(frozen=True)
class Request:
    """What the server received: ``at`` is ``time.monotonic()`` when the body had been read."""

    at: float
    method: str
    path: str
    headers: dict[str, str]  # names lowercased
    raw: bytes
    body: Any  # the JSON body, or None when it is not JSON


def chat(
    content: str | None = "hello",
    *,
    model: str = "test-model",
    prompt_tokens: int = 11,
    completion_tokens: int = 7,
    total_tokens: int | None = None,
    finish_reason: str = "stop",
    usage: bool = True,
) -> dict[str, Any]:
    """A chat completion as the API returns it, with one choice answering ``content``."""
    body: dict[str, Any] = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish_reason,
            }
        ],
    }
    if usage:
        body["usage"] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": (
                prompt_tokens + completion_tokens if total_tokens is None else total_tokens
            ),
        }
    return body


def error(status: int, message: str, **headers: str) -> Reply:
    """An error answer with the API's error body."""
    body = {"error": {"message": message, "type": "test_error", "code": str(status)}}
    return Reply(status, body, {k.replace("_", "-"): v for k, v in headers.items()})


class LlmServer:
    """The server; see the module's docstring. Use :func:`serve` to start and stop it."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.otherwise: Reply | None = None
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """What an agent's ``base_url`` (or ``$OPENAI_BASE_URL``) should be."""
        return f"http://127.0.0.1:{self.port}/v1"

    def reply(self, *replies: Reply | dict[str, Any]) -> LlmServer:
        """Queue answers, in order; a dict is a 200 with that JSON body."""
        with self._lock:
            for r in replies:
                self._queue.append(r if isinstance(r, Reply) else Reply(200, r))
        return self

    @property
    def pending(self) -> int:
        """Scripted answers not given yet."""
        with self._lock:
            return len(self._queue)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, cut short any delay, close the socket and join every thread."""
        self._stopping.set()
        self._httpd.shutdown()
        self._thread.join()
        self._httpd.server_close()  # joins the handler threads (block_on_close)

    def _next(self) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.otherwise is not None:
            return self.otherwise
        return error(500, "llmserver: no reply scripted for this request")


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True
    owner: LlmServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that went away (a timeout, a closed connection) is expected here
        return


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: nothing lingers at stop
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet

    def do_POST(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with owner._lock:
            owner.requests.append(
                Request(
                    time.monotonic(),
                    "POST",
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    raw,
                    body,
                )
            )
        if self.path != PATH:
            self._send(error(404, f"no such path {self.path}"))
            return
        self._send(owner._next())

    def do_GET(self) -> None:
        self._send(error(404, "only POST /v1/chat/completions is served"))

    def _send(self, reply: Reply) -> None:
        if reply.delay and self.server.owner._stopping.wait(reply.delay):
            return  # stopping: answer nothing
        data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def serve() -> Iterator[LlmServer]:
    """A started server, stopped on the way out."""
    server = LlmServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
