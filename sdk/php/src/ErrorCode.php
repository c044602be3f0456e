<?php

declare(strict_types=1);

namespace Grconnect;

/**
 * The codes grconnect's API answers with. The list is open: ApiException::$errorCode
 * carries whatever code the server sent, also one missing here.
 */
enum ErrorCode: string
{
    // The caller's side.
    case Unauthorized = 'unauthorized';
    case InsufficientScope = 'insufficient_scope';
    case NotFound = 'not_found';
    case InvalidInput = 'invalid_input';
    case InvalidCursor = 'invalid_cursor';
    case BadRequest = 'bad_request';
    case MethodNotAllowed = 'method_not_allowed';
    case RequestEntityTooLarge = 'request_entity_too_large';
    case UnsupportedMediaType = 'unsupported_media_type';
    case LinkUsed = 'link_used';
    case Disconnected = 'disconnected';
    // The customer must approve access again (ApiException::$reconnect holds the call).
    case NeedsReconnect = 'needs_reconnect';
    // The operator must act on the app (ApiException::$app names it).
    case AppCredentialsRejected = 'app_credentials_rejected';
    case AppMisconfigured = 'app_misconfigured';
    // Wait and try again (ApiException::$retryAfter says how long).
    case GetResponseUnavailable = 'getresponse_unavailable';
    case GetResponseRefusing = 'getresponse_refusing';
    case RateLimited = 'rate_limited';
    case TooManyConcurrentRequests = 'too_many_concurrent_requests';
    case RefreshTooSoon = 'refresh_too_soon';
    case StorageUnavailable = 'storage_unavailable';
    case InternalError = 'internal_error';
    // The SDK's own: an answer without grconnect's error envelope.
    case UnexpectedResponse = 'unexpected_response';
}
