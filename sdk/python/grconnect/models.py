"""What grconnect's API answers, as dataclasses."""

from __future__ import annotations

import json as jsonlib
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from enum import StrEnum
from typing import Any


def parse_time(value: Any) -> datetime | None:
    """Parses an RFC 3339 time as grconnect writes it ("2030-01-02T03:04:05.123456789Z")."""
    if not value:
        return None
    return datetime.fromisoformat(str(value))


def _required_time(value: Any) -> datetime:
    t = parse_time(value)
    if t is None:
        raise ValueError("a required time is missing")
    return t


@dataclass(frozen=True, slots=True, repr=False)
class Token:
    """A connection's GetResponse access token.

    ``str(token)`` is the access token itself (for a header or a shell);
    ``repr(token)`` shows only its last four characters, so a logged Token does
    not leak it.
    """

    access_token: str
    token_type: str
    expires_at: datetime

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Token:
        return cls(access_token=doc["access_token"], token_type=doc.get("token_type", "Bearer"), expires_at=_required_time(doc["expires_at"]))

    def __str__(self) -> str:
        return self.access_token

    def __repr__(self) -> str:
        return f"Token(access_token='…{self.access_token[-4:]}', token_type={self.token_type!r}, expires_at={self.expires_at.isoformat()!r})"


@dataclass(frozen=True, slots=True)
class Account:
    """The GetResponse account behind a connection."""

    id: str = ""
    email: str = ""
    name: str = ""
    company_name: str = ""


class Status(StrEnum):
    """The states of a connection (``Connection.status`` compares equal to them)."""

    ACTIVE = "active"
    REFRESH_FAILING = "refresh_failing"
    NEEDS_RECONNECT = "needs_reconnect"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True, slots=True)
class Connection:
    """One customer's connected GetResponse account. It never holds a token."""

    id: str
    app_id: str
    customer_ref: str
    status: str
    account: Account
    max_domain: str = ""
    #: When the access token expires; None once disconnected.
    expires_at: datetime | None = None
    last_refresh_at: datetime | None = None
    last_error: str = ""
    failure_count: int = 0
    next_attempt_at: datetime | None = None
    connected_at: datetime | None = None
    disconnected_at: datetime | None = None
    #: Where GetResponse's webhooks for this account go, when the server offers it.
    events_url: str = ""

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Connection:
        acc = doc.get("account") or {}
        return cls(
            id=doc["id"],
            app_id=doc.get("app_id", ""),
            customer_ref=doc.get("customer_ref", ""),
            status=doc.get("status", ""),
            account=Account(id=acc.get("id", ""), email=acc.get("email", ""), name=acc.get("name", ""), company_name=acc.get("company_name", "")),
            max_domain=doc.get("max_domain", "") or "",
            expires_at=parse_time(doc.get("expires_at")),
            last_refresh_at=parse_time(doc.get("last_refresh_at")),
            last_error=doc.get("last_error", "") or "",
            failure_count=int(doc.get("failure_count") or 0),
            next_attempt_at=parse_time(doc.get("next_attempt_at")),
            connected_at=parse_time(doc.get("connected_at")),
            disconnected_at=parse_time(doc.get("disconnected_at")),
            events_url=doc.get("events_url", "") or "",
        )


@dataclass(frozen=True, slots=True)
class ConnectionPage:
    """One page of connections; ``next_cursor`` is None on the last."""

    connections: list[Connection]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class ConnectSession:
    """A single-use connect link for one customer: send them to ``url``."""

    id: str
    url: str
    expires_at: datetime

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ConnectSession:
        return cls(id=doc["id"], url=doc["url"], expires_at=_required_time(doc["expires_at"]))


@dataclass(frozen=True, slots=True)
class ProxyResponse:
    """GetResponse's answer through the proxy, whatever its status."""

    status: int
    headers: Message = field(repr=False)
    body: bytes = field(repr=False)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        charset = self.headers.get_content_charset() or "utf-8"
        return self.body.decode(charset, errors="replace")

    def json(self) -> Any:
        """The body decoded as JSON."""
        return jsonlib.loads(self.body)
