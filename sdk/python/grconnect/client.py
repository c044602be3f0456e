"""The client of grconnect's JSON API."""

from __future__ import annotations

import http.client
import json as jsonlib
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import Message
from typing import Any, Iterator, Mapping, Sequence

from ._version import __version__
from .errors import APIError, ErrorCode, TransportError, error_from, parse_envelope, retry_after_of
from .models import Connection, ConnectionPage, ConnectSession, ProxyResponse, Token

#: The methods whose repetition does what one call does: only these are sent
#: again after a transport failure.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})

#: Added to a Retry-After, so the call comes back after the limit has reset.
_RETRY_PAD = 0.1

QueryValue = str | int | float | bool
Query = Mapping[str, QueryValue | Sequence[QueryValue]]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Never follows a redirect: a 3xx comes back as the answer."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


@dataclass
class _Answer:
    status: int
    reason: str
    headers: Message
    body: bytes


class _Flight:
    """One token request that concurrent callers for a connection share."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.token: Token | None = None
        self.error: BaseException | None = None
        # Set when forget_token ran while the request was out: its answer goes to
        # its callers but not into the cache.
        self.stale = False


class Client:
    """Calls one grconnect installation with one API key.

    Thread-safe; share one per process so that its token cache is shared too.

    :param base_url: grconnect's address, like ``https://grconnect.example.com``
        (a trailing ``/api/v1`` is accepted).
    :param api_key: an API key made on the dashboard or with ``grconnect apikey create``.
    :param timeout: seconds each HTTP attempt may take.
    :param user_agent: names the calling application; it goes before the SDK's
        own product token in the User-Agent header.
    :param retries: how often a call that failed in transport (no answer) is sent
        again; only idempotent calls (GET, HEAD, PUT, DELETE, OPTIONS, and the
        token call) ever are.
    :param token_margin: seconds before ``expires_at`` when a cached token stops
        being served from the cache.
    :param max_retry_wait: the longest Retry-After (seconds) the proxy waits out on
        a 429; a longer one is returned to the caller at once.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        user_agent: str | None = None,
        retries: int = 2,
        token_margin: float = 60.0,
        max_retry_wait: float = 60.0,
    ) -> None:
        parsed = urllib.parse.urlsplit(base_url.strip())
        if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.query or parsed.fragment:
            raise ValueError(f"base URL {base_url!r}: give an absolute http(s) URL like https://grconnect.example.com")
        if not api_key or not api_key.strip():
            raise ValueError("the API key is empty")
        base = base_url.strip().rstrip("/")
        if not base.endswith("/api/v1"):
            base += "/api/v1"
        self._base = base
        self._api_key = api_key.strip()
        self._timeout = timeout
        ua = f"grconnect-python/{__version__}"
        self._user_agent = f"{user_agent.strip()} {ua}" if user_agent and user_agent.strip() else ua
        self._retries = max(0, retries)
        self._retry_backoff = 0.25
        self._token_margin = timedelta(seconds=max(0.0, token_margin))
        self._max_retry_wait = max(0.0, max_retry_wait)
        self._opener = urllib.request.build_opener(_NoRedirects())
        self._lock = threading.Lock()
        self._tokens: dict[str, Token] = {}
        self._flights: dict[str, _Flight] = {}

    # --- tokens ---------------------------------------------------------------

    def token(self, connection_id: str) -> Token:
        """A usable access token for the connection.

        Served from the cache while it is valid beyond the token margin; else asked
        of grconnect, which refreshes it first when it is about to expire.
        Concurrent calls for one connection share one request. Call it before every
        GetResponse request: it is cheap.
        """
        _require_id("connection", connection_id)
        with self._lock:
            cached = self._tokens.get(connection_id)
            if cached is not None and datetime.now(timezone.utc) < cached.expires_at - self._token_margin:
                return cached
            flight = self._flights.get(connection_id)
            leader = flight is None
            if flight is None:
                flight = _Flight()
                self._flights[connection_id] = flight
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            assert flight.token is not None
            return flight.token
        try:
            doc = self._call("POST", f"/connections/{_seg(connection_id)}/token", idempotent=True)
            flight.token = Token.from_json(doc)
        except BaseException as err:  # handed to every waiting caller
            flight.error = err
        with self._lock:
            if self._flights.get(connection_id) is flight:
                del self._flights[connection_id]
            if flight.token is not None and not flight.stale:
                self._tokens[connection_id] = flight.token
        flight.done.set()
        if flight.error is not None:
            raise flight.error
        assert flight.token is not None
        return flight.token

    def forget_token(self, connection_id: str) -> None:
        """Drops the connection's cached token, so the next ``token`` asks grconnect.

        Call it when GetResponse refused the token (HTTP 401); ``refresh`` and
        ``disconnect`` forget it themselves.
        """
        with self._lock:
            self._tokens.pop(connection_id, None)
            flight = self._flights.pop(connection_id, None)
            if flight is not None:
                flight.stale = True

    # --- the proxy ------------------------------------------------------------

    def proxy(
        self,
        connection_id: str,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        json: Any = None,
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ProxyResponse:
        """Sends a GetResponse API call through grconnect's proxy.

        grconnect adds the connection's access token (and refreshes it once on a
        401). GetResponse's answer is returned as it is, also a 4xx or 5xx;
        grconnect's own refusals (no such connection, needs_reconnect, …) raise
        ``APIError``.

        A 429 with a Retry-After (GetResponse's or grconnect's own pacing) is
        waited out once, up to ``max_retry_wait``, and the call sent again; a
        second 429 is returned (or raised, when it is grconnect's). A call that
        failed in transport is sent again only when its method is idempotent.

        :param path: the GetResponse API path below /v3, like ``/from-fields``.
        :param json: a body to send encoded as JSON (unless ``body`` is given). A body goes
            out as application/json unless ``headers`` names another Content-Type.
        """
        _require_id("connection", connection_id)
        method = method.strip().upper() or "GET"
        if not path.startswith("/"):
            path = "/" + path
        if path == "/" or "://" in path:
            raise ValueError(f"proxy path {path!r}: give a GetResponse API path like /from-fields")
        send_headers = dict(headers or {})
        data: bytes | None
        if body is not None:
            data = body.encode() if isinstance(body, str) else body
        elif json is not None:
            data = jsonlib.dumps(json, separators=(",", ":")).encode()
        else:
            data = None
        if data is not None and not any(k.lower() == "content-type" for k in send_headers):
            send_headers["Content-Type"] = "application/json"  # GetResponse's API takes JSON only
        route = f"/connections/{_seg(connection_id)}/proxy{path}"
        waited = False
        while True:
            answer = self._send(method, route, query=query, body=data, headers=send_headers, idempotent=method in IDEMPOTENT_METHODS)
            if answer.status == 429 and not waited:
                wait = retry_after_of(answer.headers)
                if wait is not None and wait <= self._max_retry_wait:
                    waited = True
                    time.sleep(wait + _RETRY_PAD)
                    continue
            if answer.status >= 400:
                err = parse_envelope(answer.status, answer.headers, answer.body)
                if err is not None:
                    raise err
            return ProxyResponse(status=answer.status, headers=answer.headers, body=answer.body)

    # --- connect sessions -----------------------------------------------------

    def create_connect_session(
        self,
        app_id: str | None = None,
        customer_ref: str | None = None,
        *,
        return_url: str | None = None,
        connection_id: str | None = None,
        ttl_seconds: int | None = None,
        allow_transfer: bool = False,
        max_domain: str | None = None,
    ) -> ConnectSession:
        """Makes a single-use connect link for one customer; send them to its ``url``.

        With ``connection_id`` it is a reconnect link that renews that connection
        (``app_id`` and ``customer_ref`` may then be left out). ``return_url`` must
        be on one of the app's return origins.
        """
        payload: dict[str, Any] = {
            k: v
            for k, v in {
                "app_id": app_id,
                "customer_ref": customer_ref,
                "return_url": return_url,
                "connection_id": connection_id,
                "ttl_seconds": ttl_seconds,
                "max_domain": max_domain,
            }.items()
            if v
        }
        if allow_transfer:
            payload["allow_transfer"] = True
        return ConnectSession.from_json(self._call("POST", "/connect-sessions", payload=payload))

    def revoke_connect_session(self, session_id: str) -> None:
        """Revokes an unused connect link."""
        _require_id("connect session", session_id)
        self._call("DELETE", f"/connect-sessions/{_seg(session_id)}", idempotent=True)

    # --- connections ----------------------------------------------------------

    def connection(self, connection_id: str) -> Connection:
        """One connection: account, status, expiry, last refresh, last error."""
        _require_id("connection", connection_id)
        return Connection.from_json(self._call("GET", f"/connections/{_seg(connection_id)}", idempotent=True))

    def connections_page(
        self,
        *,
        customer_ref: str | None = None,
        status: str | None = None,
        app_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> ConnectionPage:
        """One page of connections (``cursor`` from the previous page's ``next_cursor``)."""
        query = {k: v for k, v in {"customer_ref": customer_ref, "status": status, "app_id": app_id, "limit": limit, "cursor": cursor}.items() if v}
        doc = self._call("GET", "/connections", query=query, idempotent=True)
        return ConnectionPage(connections=[Connection.from_json(c) for c in doc.get("connections") or []], next_cursor=doc.get("next_cursor") or None)

    def connections(
        self,
        *,
        customer_ref: str | None = None,
        status: str | None = None,
        app_id: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[Connection]:
        """Every connection the filters match, fetched page after page as the loop goes on."""
        cursor: str | None = None
        while True:
            page = self.connections_page(customer_ref=customer_ref, status=status, app_id=app_id, limit=page_size, cursor=cursor)
            yield from page.connections
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def refresh(self, connection_id: str) -> Connection:
        """Has grconnect refresh the tokens now (it always asks GetResponse).

        Returns the connection as it is afterwards; the cached token is forgotten.
        """
        _require_id("connection", connection_id)
        self.forget_token(connection_id)
        return Connection.from_json(self._call("POST", f"/connections/{_seg(connection_id)}/refresh"))

    def disconnect(self, connection_id: str) -> Connection:
        """Erases the connection's tokens at grconnect; the record stays, disconnected."""
        _require_id("connection", connection_id)
        self.forget_token(connection_id)
        return Connection.from_json(self._call("DELETE", f"/connections/{_seg(connection_id)}", idempotent=True))

    # --- HTTP -----------------------------------------------------------------

    def _call(
        self,
        method: str,
        route: str,
        *,
        query: Query | None = None,
        payload: Any = None,
        idempotent: bool = False,
    ) -> Any:
        """Sends a call and returns its decoded JSON; an error answer raises APIError."""
        headers = {}
        data = None
        if payload is not None:
            data = jsonlib.dumps(payload, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        answer = self._send(method, route, query=query, body=data, headers=headers, idempotent=idempotent)
        if not 200 <= answer.status < 300:
            raise error_from(answer.status, answer.reason, answer.headers, answer.body)
        if not answer.body:
            return {}
        try:
            return jsonlib.loads(answer.body)
        except ValueError as err:
            raise APIError(
                status=answer.status,
                code=ErrorCode.UNEXPECTED_RESPONSE,
                message=f"the answer is not the JSON this call expects: {err}",
                request_id=answer.headers.get("X-Request-Id") or "",
                body=answer.body,
            ) from None

    def _send(
        self,
        method: str,
        route: str,
        *,
        query: Query | None,
        body: bytes | None,
        headers: Mapping[str, str],
        idempotent: bool,
    ) -> _Answer:
        """Sends a request, again after a transport failure when it is idempotent."""
        url = self._base + route
        if query:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(_query_pairs(query))
        attempts = 1 + (self._retries if idempotent else 0)
        for attempt in range(attempts):
            if attempt:
                time.sleep(self._retry_backoff * 2 ** (attempt - 1) * random.uniform(0.75, 1.25))
            try:
                return self._attempt(method, url, body, headers)
            except TransportError:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def _attempt(self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]) -> _Answer:
        req = urllib.request.Request(url, data=body, method=method)
        for k, v in headers.items():
            req.add_header(k, v)
        req.add_header("Authorization", f"Bearer {self._api_key}")
        req.add_header("User-Agent", self._user_agent)
        if not req.has_header("Accept"):
            req.add_header("Accept", "application/json")
        route = urllib.parse.urlsplit(url).path
        try:
            with self._opener.open(req, timeout=self._timeout) as res:
                return _Answer(status=res.status, reason=res.reason, headers=res.headers, body=res.read())
        except urllib.error.HTTPError as err:
            try:
                data = err.read()
            except (OSError, http.client.HTTPException) as read_err:
                raise TransportError(f"{method} {route}: reading the answer: {read_err}") from None
            finally:
                err.close()
            return _Answer(status=err.code, reason=err.reason or "", headers=err.headers, body=data)
        except urllib.error.URLError as err:
            raise TransportError(f"{method} {route}: {err.reason}") from None
        except (OSError, http.client.HTTPException) as err:
            raise TransportError(f"{method} {route}: {err!r}") from None


def _query_pairs(query: Query) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for key, value in query.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            pairs.append((key, ("true" if v else "false") if isinstance(v, bool) else str(v)))
    return pairs


def _seg(value: str) -> str:
    """Escapes one path segment (an ID)."""
    return urllib.parse.quote(value, safe="")


def _require_id(what: str, value: str) -> None:
    if not value or not value.strip():
        raise ValueError(f"the {what} ID is empty")
