"""Verification of grconnect's webhooks (Standard Webhooks, standardwebhooks.com)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from datetime import datetime
from typing import Any, Mapping

from .errors import WebhookVerificationError

#: How far webhook-timestamp may be from the receiver's clock, either way (seconds).
TOLERANCE = 5 * 60


def verify_webhook(
    secret: str,
    headers: Mapping[str, str] | Any,
    body: bytes | str,
    *,
    now: datetime | float | None = None,
) -> None:
    """Checks a webhook grconnect sent; raises WebhookVerificationError if it fails.

    As the Standard Webhooks specification defines it: the HMAC-SHA256 of
    ``"<webhook-id>.<webhook-timestamp>.<body>"`` keyed with the secret
    (``whsec_<base64 key>``, shown once when the app's webhook was set) must match
    one of the ``v1,<base64>`` signatures in ``webhook-signature`` (compared in
    constant time), and ``webhook-timestamp`` must be within five minutes of now.

    :param headers: the request's headers, any mapping (names in any case).
    :param body: the raw request body, exactly as received (not re-encoded JSON).
    :param now: the time to check the timestamp against (tests); default the clock.

    Use ``webhook-id`` (the same for every attempt of one delivery) to act on each
    delivery once.
    """
    key = _key(secret)
    msg_id, stamp, signatures = (_header(headers, n) for n in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    for name, value in (("webhook-id", msg_id), ("webhook-timestamp", stamp), ("webhook-signature", signatures)):
        if not value:
            raise WebhookVerificationError("missing_header", f"the {name} header is missing")
    if not stamp.isascii() or not stamp.isdigit():
        raise WebhookVerificationError("invalid_timestamp", f"webhook-timestamp {stamp!r} is not Unix seconds")
    sent = int(stamp)
    if now is None:
        current = int(time.time())
    elif isinstance(now, datetime):
        current = int(now.timestamp())
    else:
        current = int(now)
    if current - sent > TOLERANCE:
        raise WebhookVerificationError("timestamp_too_old", "webhook-timestamp is more than 5 minutes in the past")
    if sent - current > TOLERANCE:
        raise WebhookVerificationError("timestamp_too_new", "webhook-timestamp is more than 5 minutes in the future")
    raw = body.encode() if isinstance(body, str) else bytes(body)
    expected = hmac.new(key, f"{msg_id}.{stamp}.".encode() + raw, hashlib.sha256).digest()
    for entry in signatures.split():
        version, _, sig = entry.partition(",")
        if version != "v1" or not sig:
            continue  # another scheme (v1a) or a malformed entry
        try:
            given = base64.b64decode(sig, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(given, expected):
            return
    raise WebhookVerificationError("no_matching_signature", "no v1 signature in webhook-signature matches the body and the secret")


def _key(secret: str) -> bytes:
    """Decodes a ``whsec_<base64>`` secret (the prefix may be left out)."""
    encoded = secret.strip().removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise WebhookVerificationError("invalid_secret", "the secret is not whsec_ followed by base64")
    return key


def _header(headers: Any, name: str) -> str:
    """A header's value whatever the case of its name in the mapping."""
    value = headers.get(name)
    if value is None:
        for k, v in headers.items():
            if k.lower() == name:
                value = v
                break
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return str(value).strip() if value is not None else ""
