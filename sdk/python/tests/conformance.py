"""The SDK conformance scenario, run by sdk/conformance against a real grconnect.

It talks to the Go driver one line at a time (its requests on stdout, the answers on
stdin) and exits non-zero, saying why on stderr, when the SDK misbehaves.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grconnect  # noqa: E402


def ask(request: str) -> str:
    print(request, flush=True)
    answer = sys.stdin.readline().strip()
    if answer.startswith("error"):
        raise SystemExit(f"the driver could not do {request.split()[0]!r}: {answer}")
    return answer


def check(ok: bool, what: str) -> None:
    if not ok:
        raise SystemExit(f"conformance: {what}")


def main() -> None:
    env = os.environ
    ref, app_id = env["GRCONNECT_CUSTOMER_REF"], env["GRCONNECT_APP_ID"]
    gc = grconnect.Client(env["GRCONNECT_URL"], env["GRCONNECT_API_KEY"], user_agent="sdk-conformance")

    # A connect session, completed by a customer through the simulated consent.
    session = gc.create_connect_session(app_id, ref)
    check(bool(session.id) and session.url.startswith("http"), f"connect session {session!r}")
    check(session.expires_at > datetime.now(timezone.utc), f"connect session expires {session.expires_at}")
    ask(f"consent {session.url}")

    conns = list(gc.connections(customer_ref=ref))
    check(len(conns) == 1, f"{len(conns)} connections of {ref}; want 1")
    conn = gc.connection(conns[0].id)
    check(conn.status == grconnect.Status.ACTIVE and conn.app_id == app_id and conn.account.email == env["GRCONNECT_ACCOUNT_EMAIL"], f"connection {conn!r}")

    # Two tokens, the second from the cache.
    first, second = gc.token(conn.id), gc.token(conn.id)
    check(bool(first.access_token) and first == second, f"tokens {first!r} then {second!r}")
    check(first.expires_at > datetime.now(timezone.utc) + timedelta(minutes=1), f"token expires {first.expires_at}")
    check(ask(f"token-requests {conn.id}") == "1", "the second token call was not served from the cache")

    # A GetResponse call through the proxy.
    res = gc.proxy(conn.id, "GET", "/from-fields")
    check(res.status == 200 and bool(res.json()) and "fromFieldId" in res.json()[0], f"GET /from-fields: {res.status} {res.text[:200]}")

    # GetResponse answers 429 with Retry-After: 1; the SDK waits it out once.
    ask(f"arm-429 {conn.id}")
    start = time.monotonic()
    res = gc.proxy(conn.id, "GET", "/from-fields")
    waited = time.monotonic() - start
    check(res.status == 200, f"GET /from-fields after a 429: {res.status} {res.text[:200]}")
    check(waited >= 1.0, f"answered after {waited:.2f} s; the 429 asked for 1 s")
    check(ask(f"proxy-requests {conn.id}") == "3", "the 429 was not sent again exactly once")

    # An error with its code: a disconnected connection has no token.
    check(gc.disconnect(conn.id).status == grconnect.Status.DISCONNECTED, "disconnect")
    try:
        gc.token(conn.id)
        check(False, "a token of a disconnected connection")
    except grconnect.APIError as err:
        check(err.code == grconnect.ErrorCode.DISCONNECTED and err.status == 409 and bool(err.request_id), f"token after disconnect: {err!r}")
    try:
        gc.connection("con_doesnotexist")
        check(False, "a connection that does not exist")
    except grconnect.APIError as err:
        check(err.code == "not_found" and err.status == 404, f"unknown connection: {err!r}")

    # A real delivery verifies; a tampered copy does not.
    hook = json.loads(ask(f"webhook {conn.id}"))
    body = base64.b64decode(hook["body"])
    grconnect.verify_webhook(hook["secret"], hook["headers"], body)
    tampered = body.replace(ref.encode(), b"mallory", 1)
    check(tampered != body, "the delivery does not name the customer")
    try:
        grconnect.verify_webhook(hook["secret"], hook["headers"], tampered)
        check(False, "a tampered delivery verified")
    except grconnect.WebhookVerificationError as err:
        check(err.reason == "no_matching_signature", f"tampered delivery: {err.reason}")

    print("done", flush=True)


if __name__ == "__main__":
    main()
