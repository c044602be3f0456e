from __future__ import annotations

import base64
import hashlib
import hmac
import time
import unittest

from grconnect import WebhookVerificationError, verify_webhook

# The Standard Webhooks specification's published test vector (the reference
# libraries' signing test).
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def vector_headers(**changes: str | None) -> dict[str, str]:
    headers = {"webhook-id": MSG_ID, "webhook-timestamp": str(TIMESTAMP), "webhook-signature": SIGNATURE}
    for name, value in changes.items():
        key = name.replace("_", "-")
        if value is None:
            del headers[key]
        else:
            headers[key] = value
    return headers


def sign(secret: str, msg_id: str, ts: int, body: bytes) -> dict[str, str]:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    sig = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": f"v1,{sig}"}


class VerifyWebhookTest(unittest.TestCase):
    def reason(self, secret: str, headers: dict[str, str], body: bytes | str, now: float | None = TIMESTAMP) -> str:
        try:
            verify_webhook(secret, headers, body, now=now)
        except WebhookVerificationError as err:
            self.assertTrue(str(err))
            return err.reason
        return ""

    def test_the_specifications_vector(self) -> None:
        self.assertEqual(sign(SECRET, MSG_ID, TIMESTAMP, BODY)["webhook-signature"], SIGNATURE)
        self.assertEqual(self.reason(SECRET, vector_headers(), BODY), "")
        self.assertEqual(self.reason(SECRET, vector_headers(), BODY.decode()), "")  # a str body is its UTF-8
        self.assertEqual(self.reason(SECRET.removeprefix("whsec_"), vector_headers(), BODY), "")
        # Today the vector's timestamp is years old.
        self.assertEqual(self.reason(SECRET, vector_headers(), BODY, now=None), "timestamp_too_old")

    def test_refusals(self) -> None:
        other = "whsec_" + base64.b64encode(b"another secret of thirty-two b!!").decode()
        wrong = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
        cases = [
            ("several signatures, one matches", SECRET, vector_headers(webhook_signature=f"{wrong} v1a,{wrong[3:]} {SIGNATURE} v1,bm90IGJhc2U2NA"), BODY, TIMESTAMP, ""),
            ("header names in any case", SECRET, {"Webhook-Id": MSG_ID, "WEBHOOK-TIMESTAMP": str(TIMESTAMP), "webhook-signature": SIGNATURE}, BODY, TIMESTAMP, ""),
            ("tampered body", SECRET, vector_headers(), b'{"test": 2432232315}', TIMESTAMP, "no_matching_signature"),
            ("re-encoded body", SECRET, vector_headers(), b'{"test":2432232314}', TIMESTAMP, "no_matching_signature"),
            ("wrong secret", other, vector_headers(), BODY, TIMESTAMP, "no_matching_signature"),
            ("only other schemes and wrong v1", SECRET, vector_headers(webhook_signature=f"{wrong} v2,{SIGNATURE[3:]}"), BODY, TIMESTAMP, "no_matching_signature"),
            ("tampered id", SECRET, vector_headers(webhook_id="msg_other"), BODY, TIMESTAMP, "no_matching_signature"),
            ("five minutes old passes", SECRET, vector_headers(), BODY, TIMESTAMP + 300, ""),
            ("five minutes ahead passes", SECRET, vector_headers(), BODY, TIMESTAMP - 300, ""),
            ("stale timestamp", SECRET, vector_headers(), BODY, TIMESTAMP + 301, "timestamp_too_old"),
            ("future timestamp", SECRET, vector_headers(), BODY, TIMESTAMP - 301, "timestamp_too_new"),
            ("timestamp not a number", SECRET, vector_headers(webhook_timestamp="2021-02-25T15:02:10Z"), BODY, TIMESTAMP, "invalid_timestamp"),
            ("timestamp with a sign", SECRET, vector_headers(webhook_timestamp="+1614265330"), BODY, TIMESTAMP, "invalid_timestamp"),
            ("missing id", SECRET, vector_headers(webhook_id=None), BODY, TIMESTAMP, "missing_header"),
            ("missing timestamp", SECRET, vector_headers(webhook_timestamp=None), BODY, TIMESTAMP, "missing_header"),
            ("missing signature", SECRET, vector_headers(webhook_signature=None), BODY, TIMESTAMP, "missing_header"),
            ("secret not base64", "whsec_not*base64", vector_headers(), BODY, TIMESTAMP, "invalid_secret"),
            ("empty secret", "", vector_headers(), BODY, TIMESTAMP, "invalid_secret"),
        ]
        for name, secret, headers, body, now, want in cases:
            with self.subTest(name):
                self.assertEqual(self.reason(secret, headers, body, now=now), want)

    def test_a_fresh_delivery_against_the_clock(self) -> None:
        secret = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
        body = b'{"type":"connection.created","connection":{"id":"con_1"}}'
        now = int(time.time())
        self.assertEqual(self.reason(secret, sign(secret, "whd_1", now, body), body, now=None), "")
        self.assertEqual(self.reason(secret, sign(secret, "whd_1", now - 600, body), body, now=None), "timestamp_too_old")
        self.assertEqual(self.reason(secret, sign(secret, "whd_1", now, body), body + b" ", now=None), "no_matching_signature")


if __name__ == "__main__":
    unittest.main()
