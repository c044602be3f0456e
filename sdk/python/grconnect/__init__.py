"""Client of grconnect's JSON API for the operator's backend.

Fresh GetResponse access tokens for a connection (cached until shortly before
they expire), GetResponse calls through grconnect's proxy, connect sessions for
customers, the connections themselves, and verification of grconnect's webhooks
(Standard Webhooks). Standard library only.

    import grconnect
    gc = grconnect.Client("https://grconnect.example.com", api_key)
    token = gc.token("con_…")  # call it before every GetResponse request: it is cached
"""

from ._version import __version__
from .client import IDEMPOTENT_METHODS, Client
from .errors import APIError, AppRef, ErrorCode, GrconnectError, ReconnectHint, TransportError, WebhookVerificationError
from .models import Account, Connection, ConnectionPage, ConnectSession, ProxyResponse, Status, Token
from .webhooks import TOLERANCE, verify_webhook

__all__ = [
    "IDEMPOTENT_METHODS",
    "TOLERANCE",
    "APIError",
    "Account",
    "AppRef",
    "Client",
    "ConnectSession",
    "Connection",
    "ConnectionPage",
    "ErrorCode",
    "GrconnectError",
    "ProxyResponse",
    "ReconnectHint",
    "Status",
    "Token",
    "TransportError",
    "WebhookVerificationError",
    "__version__",
    "verify_webhook",
]
