from __future__ import annotations

import itertools
import json
import threading
import time
import unittest

import grconnect
from grconnect import APIError, Client, ErrorCode, Status

from .fake_api import API_KEY, FakeAPI, FakeTestCase, Reply, Request, error_reply, json_reply, token_reply


class ClientTest(FakeTestCase):
    def test_arguments_are_checked(self) -> None:
        for base in ["", "grconnect.example.com", "ftp://x", "https://x/?a=1"]:
            with self.assertRaises(ValueError, msg=base):
                Client(base, "k")
        with self.assertRaises(ValueError):
            Client("https://x", " ")
        for base, want in {
            "https://x": "https://x/api/v1",
            "https://x/": "https://x/api/v1",
            "https://x/sub/api/v1/": "https://x/sub/api/v1",
        }.items():
            self.assertEqual(Client(base, "k")._base, want)

    def test_requests_carry_key_and_user_agent(self) -> None:
        fake = self.serve(lambda r: json_reply(200, {"id": "con_1", "status": "active", "account": {"email": "a@example.com"}, "connected_at": "2030-01-02T03:04:05.123456789Z"}))
        conn = self.client(fake, user_agent="billing/1.2").connection("con_1")
        self.assertEqual(conn.id, "con_1")
        self.assertEqual(conn.status, Status.ACTIVE)
        self.assertEqual(conn.account.email, "a@example.com")
        self.assertEqual(conn.connected_at.microsecond, 123456)  # nanoseconds cut to microseconds
        self.assertEqual(fake.last().headers["user-agent"], f"billing/1.2 grconnect-python/{grconnect.__version__}")
        self.assertEqual(fake.last().path, "/api/v1/connections/con_1")
        with self.assertRaises(APIError) as caught:
            Client(fake.url, "grc_wrong").connection("con_1")
        self.assertEqual(caught.exception.code, ErrorCode.UNAUTHORIZED)


class TokenTest(FakeTestCase):
    def test_second_call_is_served_from_the_cache(self) -> None:
        n = itertools.count(1)
        fake = self.serve(lambda r: token_reply(f"access-{next(n)}"))
        gc = self.client(fake)
        first = gc.token("con_1")
        second = gc.token("con_1")
        self.assertEqual(first.access_token, "access-1")
        self.assertEqual(second, first)
        self.assertEqual(fake.count("POST /api/v1/connections/con_1/token"), 1)
        self.assertEqual(gc.token("con_2").access_token, "access-2")  # each connection has its own entry
        gc.forget_token("con_1")
        self.assertEqual(gc.token("con_1").access_token, "access-3")

    def test_token_inside_the_margin_is_asked_again(self) -> None:
        fake = self.serve(lambda r: token_reply("short", expires_in=30))
        gc = self.client(fake)  # margin 60 s
        for _ in range(3):
            self.assertEqual(gc.token("con_1").access_token, "short")
        self.assertEqual(fake.count("POST /api/v1/connections/con_1/token"), 3)
        narrow = self.client(fake, token_margin=10)
        narrow.token("con_9")
        narrow.token("con_9")
        self.assertEqual(fake.count("POST /api/v1/connections/con_9/token"), 1)

    def test_concurrent_callers_share_one_request(self) -> None:
        arrived = threading.Event()
        release = threading.Event()

        def handler(r: Request) -> Reply:
            arrived.set()
            release.wait(5)
            return token_reply("shared")

        fake = self.serve(handler)
        gc = self.client(fake)
        results: list[str] = []
        lock = threading.Lock()

        def call() -> None:
            tok = gc.token("con_1")
            with lock:
                results.append(tok.access_token)

        threads = [threading.Thread(target=call) for _ in range(20)]
        for t in threads:
            t.start()
        arrived.wait(5)
        time.sleep(0.15)  # time for any further request to arrive
        release.set()
        for t in threads:
            t.join(5)
        self.assertEqual(results, ["shared"] * 20)
        self.assertEqual(fake.count("POST /api/v1/connections/con_1/token"), 1)

    def test_a_shared_failure_reaches_every_caller_and_is_not_cached(self) -> None:
        release = threading.Event()

        def handler(r: Request) -> Reply:
            release.wait(5)
            return error_reply(503, "getresponse_unavailable", "GetResponse is down.", retry_after=30)

        fake = self.serve(handler)
        gc = self.client(fake)
        errors: list[BaseException] = []

        def call() -> None:
            try:
                gc.token("con_1")
            except APIError as err:
                errors.append(err)

        threads = [threading.Thread(target=call) for _ in range(5)]
        for t in threads:
            t.start()
        time.sleep(0.15)
        release.set()
        for t in threads:
            t.join(5)
        self.assertEqual([e.code for e in errors], ["getresponse_unavailable"] * 5)  # type: ignore[attr-defined]
        self.assertEqual(errors[0].retry_after, 30)  # type: ignore[attr-defined]
        self.assertEqual(fake.count("POST /api/v1/connections/con_1/token"), 1)
        with self.assertRaises(APIError):
            gc.token("con_1")
        self.assertEqual(fake.count("POST /api/v1/connections/con_1/token"), 2)

    def test_repr_hides_the_token_and_str_is_the_token(self) -> None:
        fake = self.serve(lambda r: token_reply("secret-access-token-abcd"))
        tok = self.client(fake).token("con_1")
        self.assertNotIn("secret", repr(tok))
        self.assertIn("abcd", repr(tok))
        self.assertEqual(str(tok), "secret-access-token-abcd")

    def test_disconnect_forgets_the_token_and_the_error_is_typed(self) -> None:
        state = {"disconnected": False}

        def handler(r: Request) -> Reply:
            if r.method == "DELETE":
                state["disconnected"] = True
                return json_reply(200, {"id": "con_1", "status": "disconnected", "expires_at": None})
            if state["disconnected"]:
                return error_reply(409, "disconnected", "This connection is disconnected.")
            return token_reply("live")

        fake = self.serve(handler)
        gc = self.client(fake)
        gc.token("con_1")
        conn = gc.disconnect("con_1")
        self.assertEqual(conn.status, "disconnected")
        self.assertIsNone(conn.expires_at)
        with self.assertRaises(APIError) as caught:
            gc.token("con_1")
        err = caught.exception
        self.assertEqual((err.code, err.status, err.request_id), ("disconnected", 409, "req_disconnected"))
        self.assertIn("disconnected (HTTP 409)", str(err))

    def test_empty_ids_are_refused_before_any_request(self) -> None:
        fake = self.serve(lambda r: Reply(500))
        gc = self.client(fake)
        for call in (lambda: gc.token(""), lambda: gc.disconnect(" "), lambda: gc.proxy("con_1", "GET", "https://evil.example/x")):
            with self.assertRaises(ValueError):
                call()
        self.assertEqual(len(fake.requests), 0)


class ErrorTest(FakeTestCase):
    def test_errors_carry_the_api_fields(self) -> None:
        cases = [
            (
                409,
                {"code": "needs_reconnect", "message": "m", "request_id": "r1", "reconnect": {"method": "POST", "path": "/api/v1/connect-sessions", "body": {"connection_id": "con_1"}}},
                {},
                lambda e: self.assertEqual((e.reconnect.method, e.reconnect.body), ("POST", {"connection_id": "con_1"})),
            ),
            (
                409,
                {"code": "app_credentials_rejected", "message": "m", "request_id": "r2", "app": {"id": "app_1", "name": "Acme", "health": "credentials_rejected"}},
                {},
                lambda e: self.assertEqual((e.app.id, e.app.name), ("app_1", "Acme")),
            ),
            (503, {"code": "getresponse_unavailable", "message": "m", "request_id": "r3", "retry_after": 30}, {"Retry-After": "30"}, lambda e: self.assertEqual(e.retry_after, 30)),
            (403, {"code": "insufficient_scope", "message": "m", "request_id": "r4", "scope": "tokens:read"}, {}, lambda e: self.assertIsNone(e.retry_after)),
            (429, {"code": "refresh_too_soon", "message": "m", "request_id": "r5"}, {"Retry-After": "12"}, lambda e: self.assertEqual(e.retry_after, 12)),
            (400, {"code": "invalid_input", "message": "m", "request_id": "r6", "fields": {"status": "Use one of …"}}, {}, lambda e: self.assertEqual(e.fields, {"status": "Use one of …"})),
            (418, {"code": "brand_new_code", "message": "m", "request_id": "r7"}, {}, lambda e: None),
        ]
        for status, err, headers, check in cases:
            with self.subTest(code=err["code"]):
                fake = self.serve(lambda r, s=status, e=err, h=headers: json_reply(s, {"error": e}, **h))
                with self.assertRaises(APIError) as caught:
                    self.client(fake).refresh("con_1")
                got = caught.exception
                self.assertEqual((got.status, got.code, got.message, got.request_id), (status, err["code"], "m", err["request_id"]))
                self.assertEqual(json.loads(got.body)["error"]["code"], err["code"])
                check(got)

    def test_an_answer_without_the_envelope(self) -> None:
        fake = self.serve(lambda r: Reply(502, b"<html>Bad gateway</html>", {"X-Request-Id": "r8", "Content-Type": "text/html"}))
        with self.assertRaises(APIError) as caught:
            self.client(fake).connection("con_1")
        err = caught.exception
        self.assertEqual((err.status, err.code, err.request_id), (502, ErrorCode.UNEXPECTED_RESPONSE, "r8"))
        self.assertIn("502", err.message)


class ConnectionsTest(FakeTestCase):
    def test_pages_through_every_connection(self) -> None:
        ids = ["con_1", "con_2", "con_3", "con_4", "con_5"]

        def handler(r: Request) -> Reply:
            q = {k: v[0] for k, v in r.query.items()}
            if (q.get("status"), q.get("customer_ref"), q.get("limit")) != ("active", "cust 7", "2"):
                return error_reply(400, "invalid_input", f"unexpected query {q}")
            start = int(q.get("cursor", "c0")[1:])
            end = min(start + 2, len(ids))
            return json_reply(200, {"connections": [{"id": i, "status": "active"} for i in ids[start:end]], "next_cursor": f"c{end}" if end < len(ids) else None})

        fake = self.serve(handler)
        gc = self.client(fake)
        got = [c.id for c in gc.connections(status="active", customer_ref="cust 7", page_size=2)]
        self.assertEqual(got, ids)
        self.assertEqual(fake.count("GET /api/v1/connections"), 3)
        # Stopping early fetches no further page.
        next(iter(gc.connections(status="active", customer_ref="cust 7", page_size=2)))
        self.assertEqual(fake.count("GET /api/v1/connections"), 4)
        last = gc.connections_page(status="active", customer_ref="cust 7", limit=2, cursor="c4")
        self.assertEqual(([c.id for c in last.connections], last.next_cursor), (["con_5"], None))
        with self.assertRaises(APIError) as caught:
            list(gc.connections())
        self.assertEqual(caught.exception.code, "invalid_input")

    def test_connect_sessions_send_only_what_is_given(self) -> None:
        fake = self.serve(lambda r: json_reply(201, {"id": "lnk_1", "url": "https://gc.example/connect/abc", "expires_at": "2030-01-02T03:04:05Z"}) if r.method == "POST" else Reply(204))
        gc = self.client(fake)
        s = gc.create_connect_session("app_1", "cust-7", ttl_seconds=3600, allow_transfer=True)
        self.assertEqual((s.id, s.url, s.expires_at.year), ("lnk_1", "https://gc.example/connect/abc", 2030))
        req = fake.last()
        self.assertEqual((req.method, req.path, req.headers["content-type"]), ("POST", "/api/v1/connect-sessions", "application/json"))
        self.assertEqual(json.loads(req.body), {"app_id": "app_1", "customer_ref": "cust-7", "ttl_seconds": 3600, "allow_transfer": True})
        gc.create_connect_session(connection_id="con_1")
        self.assertEqual(json.loads(fake.last().body), {"connection_id": "con_1"})
        gc.revoke_connect_session("lnk_1")
        self.assertEqual((fake.last().method, fake.last().path), ("DELETE", "/api/v1/connect-sessions/lnk_1"))


if __name__ == "__main__":
    unittest.main()
