from __future__ import annotations

import itertools
import json
import threading
import time
import unittest
from typing import Callable

from grconnect import APIError, Client, TransportError

from .fake_api import API_KEY, FakeAPI, FakeTestCase, Reply, Request, error_reply, json_reply, token_reply


def getresponse_429(retry_after: str | None) -> Reply:
    headers = {"Content-Type": "application/json"}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return Reply(429, b'{"httpStatus":429,"code":1015,"message":"Too many requests"}', headers)


def drop_first(answer: Callable[[Request], Reply] = lambda r: json_reply(200, {"ok": True})) -> FakeAPI:
    """Closes the connection of the first request of each "METHOD path" without an
    answer (a transport failure); answers the next ones."""
    seen: set[str] = set()
    lock = threading.Lock()

    def handler(r: Request) -> Reply:
        key = f"{r.method} {r.path}"
        with lock:
            first = key not in seen
            seen.add(key)
        return Reply(drop=True) if first else answer(r)

    return FakeAPI(handler)


class ProxyTest(FakeTestCase):
    def test_sends_the_call_and_returns_getresponses_answer(self) -> None:
        def handler(r: Request) -> Reply:
            if r.path.endswith("/contacts/abc"):
                return Reply(404, b'{"httpStatus":404,"code":1013,"message":"Resource not found"}', {"X-RateLimit-Remaining": "79"})
            return json_reply(200, [{"fromFieldId": "V", "email": "a@example.com"}])

        fake = self.serve(handler)
        gc = self.client(fake)
        res = gc.proxy("con_1", "GET", "/from-fields", query={"fields": "email"})
        self.assertTrue(res.ok)
        self.assertEqual(res.json()[0]["fromFieldId"], "V")
        req = fake.last()
        self.assertEqual((req.method, req.path, req.query), ("GET", "/api/v1/connections/con_1/proxy/from-fields", {"fields": ["email"]}))
        # GetResponse's error is an answer, not an exception.
        res = gc.proxy("con_1", "GET", "contacts/abc")
        self.assertEqual((res.status, res.headers["X-RateLimit-Remaining"], res.json()["code"]), (404, "79", 1013))
        # A JSON body goes out encoded, with its content type.
        gc.proxy("con_1", "post", "/contacts", json={"email": "b@example.com"})
        req = fake.last()
        self.assertEqual((req.method, req.headers["content-type"], req.body), ("POST", "application/json", b'{"email":"b@example.com"}'))

    def test_grconnects_own_refusals_raise(self) -> None:
        fake = self.serve(lambda r: error_reply(409, "needs_reconnect", "The customer must approve access again."))
        with self.assertRaises(APIError) as caught:
            self.client(fake).proxy("con_1", "GET", "/from-fields")
        self.assertEqual(caught.exception.code, "needs_reconnect")

    def test_a_429_is_waited_out_once(self) -> None:
        n = itertools.count(1)
        fake = self.serve(lambda r: getresponse_429("1") if next(n) == 1 else json_reply(200, []))
        start = time.monotonic()
        res = self.client(fake).proxy("con_1", "POST", "/contacts", body=b'{"email":"x@example.com"}')
        self.assertEqual(res.status, 200)
        self.assertGreaterEqual(time.monotonic() - start, 1.0)
        self.assertEqual((fake.last().body, fake.last().headers["content-type"]), (b'{"email":"x@example.com"}', "application/json"))
        # A 429 means the call was not made, so even a POST is sent again.
        self.assertEqual(fake.count("POST /api/v1/connections/con_1/proxy/contacts"), 2)

    def test_only_once(self) -> None:
        fake = self.serve(lambda r: getresponse_429("1"))
        res = self.client(fake).proxy("con_1", "GET", "/from-fields")
        self.assertEqual(res.status, 429)
        self.assertEqual(fake.count("GET /api/v1/connections/con_1/proxy/from-fields"), 2)
        own = self.serve(lambda r: error_reply(429, "rate_limited", "Wait.", retry_after=1))
        with self.assertRaises(APIError) as caught:
            self.client(own).proxy("con_1", "GET", "/from-fields")
        self.assertEqual((caught.exception.code, caught.exception.retry_after), ("rate_limited", 1))
        self.assertEqual(own.count("GET /api/v1/connections/con_1/proxy/from-fields"), 2)

    def test_no_wait_beyond_the_maximum_or_without_retry_after(self) -> None:
        fake = self.serve(lambda r: getresponse_429("120" if "long" in r.query else None))
        gc = self.client(fake, max_retry_wait=5)
        start = time.monotonic()
        self.assertEqual(gc.proxy("con_1", "GET", "/from-fields", query={"long": 1}).status, 429)
        self.assertEqual(gc.proxy("con_1", "GET", "/from-fields").status, 429)
        self.assertLess(time.monotonic() - start, 0.5)
        self.assertEqual(fake.count("GET /api/v1/connections/con_1/proxy/from-fields"), 2)


class RetryTest(unittest.TestCase):
    def serve_dropping(self, *answer: Callable[[Request], Reply]) -> FakeAPI:
        fake = drop_first(*answer)
        self.addCleanup(fake.close)
        return fake

    def test_transport_failures_are_retried_for_idempotent_calls_only(self) -> None:
        fake = self.serve_dropping()
        gc = Client(fake.url, API_KEY)
        for method in ("GET", "PUT", "DELETE"):
            with self.subTest(method=method):
                self.assertEqual(gc.proxy("con_1", method, "/contacts/x").status, 200)
                self.assertEqual(fake.count(f"{method} /api/v1/connections/con_1/proxy/contacts/x"), 2)
        for method in ("POST", "PATCH"):
            with self.subTest(method=method):
                with self.assertRaises(TransportError):
                    gc.proxy("con_1", method, "/contacts/x")
                self.assertEqual(fake.count(f"{method} /api/v1/connections/con_1/proxy/contacts/x"), 1)
        # Creating a connect session is not idempotent; asking for a token is.
        with self.assertRaises(TransportError):
            gc.create_connect_session("app_1", "c")
        self.assertEqual(fake.count("POST /api/v1/connect-sessions"), 1)
        tokens = self.serve_dropping(lambda r: token_reply("t"))
        with self.assertRaises(TransportError):
            Client(tokens.url, API_KEY, retries=0).token("con_1")
        self.assertEqual(tokens.count("POST /api/v1/connections/con_1/token"), 1)
        self.assertEqual(Client(tokens.url, API_KEY).token("con_2").access_token, "t")
        self.assertEqual(tokens.count("POST /api/v1/connections/con_2/token"), 2)

    def test_redirects_are_not_followed(self) -> None:
        fake = FakeAPI(lambda r: Reply(302, b"", {"Location": "/api/v1/elsewhere"}))
        self.addCleanup(fake.close)
        with self.assertRaises(APIError) as caught:
            Client(fake.url, API_KEY).connection("con_1")
        self.assertEqual((caught.exception.status, caught.exception.code), (302, "unexpected_response"))
        self.assertEqual(fake.count("GET /api/v1/elsewhere"), 0)


if __name__ == "__main__":
    unittest.main()
