/** The codes grconnect's API answers with. The list is open: an error carries whatever code the server sent. */
export const ErrorCode = {
  // The caller's side.
  Unauthorized: "unauthorized",
  InsufficientScope: "insufficient_scope",
  NotFound: "not_found",
  InvalidInput: "invalid_input",
  InvalidCursor: "invalid_cursor",
  BadRequest: "bad_request",
  MethodNotAllowed: "method_not_allowed",
  RequestEntityTooLarge: "request_entity_too_large",
  UnsupportedMediaType: "unsupported_media_type",
  LinkUsed: "link_used",
  Disconnected: "disconnected",
  // The customer must approve access again (`reconnect` holds the call).
  NeedsReconnect: "needs_reconnect",
  // The operator must act on the app (`app` names it).
  AppCredentialsRejected: "app_credentials_rejected",
  AppMisconfigured: "app_misconfigured",
  // Wait and try again (`retryAfterSeconds` says how long).
  GetResponseUnavailable: "getresponse_unavailable",
  GetResponseRefusing: "getresponse_refusing",
  RateLimited: "rate_limited",
  TooManyConcurrentRequests: "too_many_concurrent_requests",
  RefreshTooSoon: "refresh_too_soon",
  StorageUnavailable: "storage_unavailable",
  InternalError: "internal_error",
  /** The SDK's own: an answer without grconnect's error envelope. */
  UnexpectedResponse: "unexpected_response",
} as const;

/** A known code, or any newer one the server sends. */
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode] | (string & {});

/** The app an error names as its cause. */
export interface AppRef {
  id: string;
  name: string;
  health: string;
}

/** The ready-made request that makes a reconnect link. */
export interface ReconnectHint {
  method: string;
  path: string;
  body: Record<string, string>;
}

/** The base of every error this SDK throws. */
export class GrconnectError extends Error {
  override name = "GrconnectError";
}

/** grconnect gave no answer: the connection failed, was cut or timed out. */
export class TransportError extends GrconnectError {
  override name = "TransportError";
}

/** An error answer of grconnect's API. */
export class ApiError extends GrconnectError {
  override name = "ApiError";
  /** The HTTP status. */
  readonly status: number;
  /** One of `ErrorCode` or a newer code. */
  readonly code: ErrorCodeValue;
  /** The API's message alone (`message` adds the code, status and request ID). */
  readonly detail: string;
  /** The request's ID in grconnect's logs (also X-Request-Id). */
  readonly requestId: string;
  /** Seconds to wait before trying again (429, 503), else undefined. */
  readonly retryAfterSeconds: number | undefined;
  /** Each bad input field (invalid_input). */
  readonly fields: Record<string, string>;
  readonly app: AppRef | undefined;
  readonly reconnect: ReconnectHint | undefined;
  /** The answer's body as it came. */
  readonly body: string;

  constructor(init: {
    status: number;
    code: string;
    message: string;
    requestId?: string;
    retryAfterSeconds?: number | undefined;
    fields?: Record<string, string> | undefined;
    app?: AppRef | undefined;
    reconnect?: ReconnectHint | undefined;
    body?: string;
  }) {
    const requestId = init.requestId ?? "";
    super(`${init.code} (HTTP ${init.status}): ${init.message}${requestId ? ` [request ${requestId}]` : ""}`);
    this.status = init.status;
    this.code = init.code;
    this.detail = init.message;
    this.requestId = requestId;
    this.retryAfterSeconds = init.retryAfterSeconds;
    this.fields = init.fields ?? {};
    this.app = init.app;
    this.reconnect = init.reconnect;
    this.body = init.body ?? "";
  }

}

/** Why a webhook failed verification. */
export type WebhookFailure =
  | "missing_header"
  | "invalid_timestamp"
  | "timestamp_too_old"
  | "timestamp_too_new"
  | "invalid_secret"
  | "no_matching_signature";

/** A webhook failed verification; `reason` says why. */
export class WebhookVerificationError extends GrconnectError {
  override name = "WebhookVerificationError";
  constructor(
    readonly reason: WebhookFailure,
    message: string,
  ) {
    super(message);
  }
}

/** Reads Retry-After (delta seconds or an HTTP date) as seconds. */
export function retryAfterOf(headers: Headers): number | undefined {
  const value = (headers.get("retry-after") ?? "").trim();
  if (value === "") return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  const when = Date.parse(value);
  return Number.isNaN(when) ? undefined : Math.max(0, (when - Date.now()) / 1000);
}

/** The ApiError of a grconnect error body, or undefined when the body is not one
 * (GetResponse's answers, passed through by the proxy, never are). */
export function parseEnvelope(status: number, headers: Headers, body: string): ApiError | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof doc !== "object" || doc === null) return undefined;
  const err = (doc as { error?: unknown }).error;
  if (typeof err !== "object" || err === null) return undefined;
  const e = err as Record<string, unknown>;
  if (typeof e.code !== "string" || e.code === "") return undefined;
  const retry = typeof e.retry_after === "number" && e.retry_after > 0 ? e.retry_after : retryAfterOf(headers);
  return new ApiError({
    status,
    code: e.code,
    message: typeof e.message === "string" ? e.message : "",
    requestId: typeof e.request_id === "string" && e.request_id ? e.request_id : (headers.get("x-request-id") ?? ""),
    retryAfterSeconds: retry,
    fields: isRecord(e.fields) ? (e.fields as Record<string, string>) : undefined,
    app: isRecord(e.app) ? (e.app as unknown as AppRef) : undefined,
    reconnect: isRecord(e.reconnect) ? (e.reconnect as unknown as ReconnectHint) : undefined,
    body,
  });
}

/** An ApiError for any error answer, also one without the envelope. */
export function errorFrom(status: number, statusText: string, headers: Headers, body: string): ApiError {
  return (
    parseEnvelope(status, headers, body) ??
    new ApiError({
      status,
      code: ErrorCode.UnexpectedResponse,
      message: `grconnect answered HTTP ${status}${statusText ? ` ${statusText}` : ""} without its error envelope`,
      requestId: headers.get("x-request-id") ?? "",
      retryAfterSeconds: retryAfterOf(headers),
      body,
    })
  );
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
