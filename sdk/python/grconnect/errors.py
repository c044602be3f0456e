"""The errors the SDK raises."""

from __future__ import annotations

import email.utils
import json
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Mapping


class ErrorCode(StrEnum):
    """The codes grconnect's API answers with.

    The list is open: ``APIError.code`` is the string the server sent, also one
    this SDK does not know. A member compares equal to its string.
    """

    # The caller's side.
    UNAUTHORIZED = "unauthorized"  # 401: no valid API key
    INSUFFICIENT_SCOPE = "insufficient_scope"  # 403: the key lacks the call's scope
    NOT_FOUND = "not_found"  # 404
    INVALID_INPUT = "invalid_input"  # 400: APIError.fields names each bad field
    INVALID_CURSOR = "invalid_cursor"
    BAD_REQUEST = "bad_request"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    REQUEST_ENTITY_TOO_LARGE = "request_entity_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    LINK_USED = "link_used"  # 409: the connect session already connected an account
    DISCONNECTED = "disconnected"  # 409: the connection's tokens were erased
    # The customer must approve access again (APIError.reconnect holds the call).
    NEEDS_RECONNECT = "needs_reconnect"
    # The operator must act on the app (APIError.app names it).
    APP_CREDENTIALS_REJECTED = "app_credentials_rejected"
    APP_MISCONFIGURED = "app_misconfigured"
    # Wait and try again (APIError.retry_after says how long).
    GETRESPONSE_UNAVAILABLE = "getresponse_unavailable"
    GETRESPONSE_REFUSING = "getresponse_refusing"
    RATE_LIMITED = "rate_limited"
    TOO_MANY_CONCURRENT_REQUESTS = "too_many_concurrent_requests"
    REFRESH_TOO_SOON = "refresh_too_soon"
    STORAGE_UNAVAILABLE = "storage_unavailable"
    INTERNAL_ERROR = "internal_error"
    # The SDK's own: an answer without grconnect's error envelope.
    UNEXPECTED_RESPONSE = "unexpected_response"


class GrconnectError(Exception):
    """The base of every error this SDK raises."""


class TransportError(GrconnectError):
    """grconnect gave no answer: the connection failed, was cut or timed out."""


@dataclass(frozen=True, slots=True)
class AppRef:
    """The app an error names as its cause."""

    id: str
    name: str
    health: str


@dataclass(frozen=True, slots=True)
class ReconnectHint:
    """The ready-made request that makes a reconnect link."""

    method: str
    path: str
    body: dict[str, str]


class APIError(GrconnectError):
    """An error answer of grconnect's API.

    ``code`` is one of ``ErrorCode`` or a newer code; ``status`` the HTTP status;
    ``request_id`` the request's ID in grconnect's logs; ``retry_after`` the
    seconds to wait before trying again (429, 503) or None.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        request_id: str = "",
        retry_after: float | None = None,
        fields: Mapping[str, str] | None = None,
        app: AppRef | None = None,
        reconnect: ReconnectHint | None = None,
        body: bytes = b"",
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.retry_after = retry_after
        self.fields: dict[str, str] = dict(fields or {})
        self.app = app
        self.reconnect = reconnect
        self.body = body
        text = f"{code} (HTTP {status}): {message}"
        if request_id:
            text += f" [request {request_id}]"
        super().__init__(text)

    def __repr__(self) -> str:
        return f"APIError(status={self.status!r}, code={self.code!r}, request_id={self.request_id!r})"


class WebhookVerificationError(GrconnectError):
    """A webhook failed verification; ``reason`` says why.

    Reasons: missing_header, invalid_timestamp, timestamp_too_old,
    timestamp_too_new, invalid_secret, no_matching_signature.
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


def retry_after_of(headers: Mapping[str, str] | Any) -> float | None:
    """Reads Retry-After (delta seconds or an HTTP date) as seconds, or None."""
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def parse_envelope(status: int, headers: Any, body: bytes) -> APIError | None:
    """The APIError of a grconnect error body, or None when the body is not one
    (GetResponse's answers, passed through by the proxy, never are)."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    err = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(err, dict) or not isinstance(err.get("code"), str) or not err["code"]:
        return None
    app = err.get("app")
    reconnect = err.get("reconnect")
    retry = err.get("retry_after")
    return APIError(
        status=status,
        code=err["code"],
        message=str(err.get("message") or ""),
        request_id=str(err.get("request_id") or headers.get("X-Request-Id") or ""),
        retry_after=float(retry) if isinstance(retry, (int, float)) and retry > 0 else retry_after_of(headers),
        fields=err.get("fields") if isinstance(err.get("fields"), dict) else None,
        app=AppRef(id=app.get("id", ""), name=app.get("name", ""), health=app.get("health", "")) if isinstance(app, dict) else None,
        reconnect=ReconnectHint(method=reconnect.get("method", ""), path=reconnect.get("path", ""), body=dict(reconnect.get("body") or {}))
        if isinstance(reconnect, dict)
        else None,
        body=body,
    )


def error_from(status: int, reason: str, headers: Any, body: bytes) -> APIError:
    """An APIError for any error answer, also one without the envelope."""
    err = parse_envelope(status, headers, body)
    if err is not None:
        return err
    return APIError(
        status=status,
        code=ErrorCode.UNEXPECTED_RESPONSE,
        message=f"grconnect answered HTTP {status} {reason} without its error envelope".replace("  ", " ").strip(),
        request_id=headers.get("X-Request-Id") or "",
        retry_after=retry_after_of(headers),
        body=body,
    )
