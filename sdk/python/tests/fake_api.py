"""A local HTTP server that plays grconnect's API for the SDK's tests."""

from __future__ import annotations

import json
import threading
import unittest
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from grconnect import Client

API_KEY = "grc_test_key"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    #: Close the connection without any answer (a transport failure).
    drop: bool = False


def json_reply(status: int, doc: Any, **headers: str) -> Reply:
    return Reply(status, json.dumps(doc).encode(), {"Content-Type": "application/json", "X-Request-Id": "req_header", **headers})


def error_reply(status: int, code: str, message: str = "Something is wrong.", retry_after: int = 0, **extra: Any) -> Reply:
    err: dict[str, Any] = {"code": code, "message": message, "request_id": f"req_{code}", **extra}
    headers = {}
    if retry_after:
        err["retry_after"] = retry_after
        headers["Retry-After"] = str(retry_after)
    return json_reply(status, {"error": err}, **headers)


def token_reply(token: str, expires_in: float = 3600) -> Reply:
    expires = datetime.now(timezone.utc) + timedelta(seconds=expires_in)
    return json_reply(200, {"access_token": token, "token_type": "Bearer", "expires_at": expires.isoformat().replace("+00:00", "Z")})


class FakeAPI:
    """Serves ``handler(request) -> Reply`` on a loopback port; counts each "METHOD path"."""

    def __init__(self, handler: Callable[[Request], Reply]) -> None:
        self.handler = handler
        self.counts: Counter[str] = Counter()
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                req = Request(self.command, parts.path, parse_qs(parts.query), {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
                with fake._lock:
                    fake.counts[f"{req.method} {req.path}"] += 1
                    fake.requests.append(req)
                if req.headers.get("authorization") != f"Bearer {API_KEY}":
                    reply = error_reply(401, "unauthorized", "Send a valid API key.")
                else:
                    reply = fake.handler(req)
                if reply.drop:
                    self.close_connection = True
                    return
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def count(self, key: str) -> int:
        with self._lock:
            return self.counts[key]

    def last(self) -> Request:
        with self._lock:
            return self.requests[-1]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class FakeTestCase(unittest.TestCase):
    """A test case that serves fakes and makes clients for them."""

    def serve(self, handler: Callable[[Request], Reply]) -> FakeAPI:
        fake = FakeAPI(handler)
        self.addCleanup(fake.close)
        return fake

    def client(self, fake: FakeAPI, **options: Any) -> Client:
        return Client(fake.url, API_KEY, **options)
