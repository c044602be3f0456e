import { ApiError, ErrorCode, TransportError, errorFrom, parseEnvelope, retryAfterOf } from "./errors.js";
import {
  ProxyResponse,
  type Connection,
  type ConnectionFilter,
  type ConnectionPage,
  type ConnectSession,
  type ConnectSessionParams,
  type ProxyOptions,
  type Query,
  type Token,
} from "./types.js";
import { VERSION } from "./version.js";

/** Options of a Client. */
export interface ClientOptions {
  /** Milliseconds each HTTP attempt may take (default 30 000). */
  timeoutMs?: number;
  /** Names the calling application; it goes before the SDK's own product token in User-Agent. */
  userAgent?: string;
  /**
   * How often a call that failed in transport (no answer) is sent again (default 2). Only idempotent
   * calls ever are: GET, HEAD, PUT, DELETE, OPTIONS, and the token call.
   */
  retries?: number;
  /** Milliseconds before `expiresAt` when a cached token stops being served from the cache (default 60 000). */
  tokenMarginMs?: number;
  /** The longest Retry-After (ms) the proxy waits out on a 429 (default 60 000); a longer one is returned at once. */
  maxRetryWaitMs?: number;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
}

/** The methods whose repetition does what one call does: only these are sent again after a transport failure. */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "PUT", "DELETE", "OPTIONS"]);

/** Added to a Retry-After, so the call comes back after the limit has reset. */
const RETRY_PAD_MS = 100;

interface Answer {
  status: number;
  statusText: string;
  headers: Headers;
  body: Uint8Array;
}

interface Flight {
  promise: Promise<Token>;
  /** Set when forgetToken ran while the request was out: its answer is not cached. */
  stale: boolean;
}

/**
 * Calls one grconnect installation with one API key. Share one per process so that its token
 * cache is shared too.
 *
 * ```ts
 * const gc = new Client("https://grconnect.example.com", process.env.GRCONNECT_API_KEY!);
 * const { accessToken } = await gc.token("con_…"); // before every GetResponse request: it is cached
 * ```
 */
export class Client {
  readonly #base: string;
  readonly #apiKey: string;
  readonly #timeoutMs: number;
  readonly #userAgent: string;
  readonly #retries: number;
  readonly #tokenMarginMs: number;
  readonly #maxRetryWaitMs: number;
  readonly #fetch: typeof fetch;
  readonly #tokens = new Map<string, Token>();
  readonly #flights = new Map<string, Flight>();
  /** The first pause between transport retries (doubled each time); tests shorten it. */
  retryBackoffMs = 250;

  /**
   * @param baseUrl grconnect's address, like `https://grconnect.example.com` (a trailing `/api/v1` is accepted).
   * @param apiKey an API key made on the dashboard or with `grconnect apikey create`.
   */
  constructor(baseUrl: string, apiKey: string, options: ClientOptions = {}) {
    let url: URL;
    try {
      url = new URL(baseUrl.trim());
    } catch {
      throw new TypeError(`base URL ${JSON.stringify(baseUrl)}: give an absolute http(s) URL like https://grconnect.example.com`);
    }
    if ((url.protocol !== "http:" && url.protocol !== "https:") || url.search !== "" || url.hash !== "") {
      throw new TypeError(`base URL ${JSON.stringify(baseUrl)}: give an absolute http(s) URL like https://grconnect.example.com`);
    }
    if (!apiKey || apiKey.trim() === "") throw new TypeError("the API key is empty");
    let base = url.toString().replace(/\/+$/, "");
    if (!base.endsWith("/api/v1")) base += "/api/v1";
    this.#base = base;
    this.#apiKey = apiKey.trim();
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    const own = `grconnect-node/${VERSION}`;
    this.#userAgent = options.userAgent?.trim() ? `${options.userAgent.trim()} ${own}` : own;
    this.#retries = Math.max(0, options.retries ?? 2);
    this.#tokenMarginMs = Math.max(0, options.tokenMarginMs ?? 60_000);
    this.#maxRetryWaitMs = Math.max(0, options.maxRetryWaitMs ?? 60_000);
    this.#fetch = options.fetch ?? globalThis.fetch;
  }

  // --- tokens ----------------------------------------------------------------

  /**
   * A usable access token for the connection: from the cache while it is valid beyond the token
   * margin, else from grconnect, which refreshes it first when it is about to expire. Concurrent
   * calls for one connection share one request. Call it before every GetResponse request: it is cheap.
   */
  async token(connectionId: string): Promise<Token> {
    requireId("connection", connectionId);
    const cached = this.#tokens.get(connectionId);
    if (cached && Date.now() < cached.expiresAt.getTime() - this.#tokenMarginMs) return cached;
    const existing = this.#flights.get(connectionId);
    if (existing) return existing.promise;
    const flight: Flight = { stale: false, promise: Promise.resolve(null as unknown as Token) };
    flight.promise = (async () => {
      try {
        const doc = (await this.#call("POST", `/connections/${seg(connectionId)}/token`, { idempotent: true })) as TokenJSON;
        const token: Token = { accessToken: doc.access_token, tokenType: doc.token_type ?? "Bearer", expiresAt: new Date(doc.expires_at) };
        if (!flight.stale) this.#tokens.set(connectionId, token);
        return token;
      } finally {
        if (this.#flights.get(connectionId) === flight) this.#flights.delete(connectionId);
      }
    })();
    this.#flights.set(connectionId, flight);
    return flight.promise;
  }

  /**
   * Drops the connection's cached token, so the next `token` asks grconnect. Call it when
   * GetResponse refused the token (HTTP 401); `refresh` and `disconnect` forget it themselves.
   */
  forgetToken(connectionId: string): void {
    this.#tokens.delete(connectionId);
    const flight = this.#flights.get(connectionId);
    if (flight) {
      flight.stale = true;
      this.#flights.delete(connectionId);
    }
  }

  // --- the proxy -------------------------------------------------------------

  /**
   * Sends a GetResponse API call through grconnect's proxy, which adds the connection's access
   * token (and refreshes it once on a 401). GetResponse's answer is returned as it is, also a 4xx
   * or 5xx; grconnect's own refusals (no such connection, needs_reconnect, …) throw an ApiError.
   *
   * A 429 with a Retry-After (GetResponse's or grconnect's own pacing) is waited out once, up to
   * `maxRetryWaitMs`, and the call sent again; a second 429 is returned (or thrown, when it is
   * grconnect's). A call that failed in transport is sent again only when its method is idempotent.
   *
   * @param path the GetResponse API path below /v3, like `/from-fields`.
   */
  async proxy(connectionId: string, method: string, path: string, options: ProxyOptions = {}): Promise<ProxyResponse> {
    requireId("connection", connectionId);
    const m = method.trim().toUpperCase() || "GET";
    const p = path.startsWith("/") ? path : `/${path}`;
    if (p === "/" || p.includes("://")) throw new TypeError(`proxy path ${JSON.stringify(path)}: give a GetResponse API path like /from-fields`);
    const headers: Record<string, string> = { ...options.headers };
    let body: Uint8Array | undefined;
    if (options.body !== undefined) {
      body = typeof options.body === "string" ? new TextEncoder().encode(options.body) : options.body;
    } else if (options.json !== undefined) {
      body = new TextEncoder().encode(JSON.stringify(options.json));
    }
    // GetResponse's API takes JSON only.
    if (body !== undefined && !Object.keys(headers).some((k) => k.toLowerCase() === "content-type")) headers["Content-Type"] = "application/json";
    const route = `/connections/${seg(connectionId)}/proxy${p}`;
    let waited = false;
    for (;;) {
      const answer = await this.#send(m, route, { query: options.query, body, headers, idempotent: IDEMPOTENT_METHODS.has(m) });
      if (answer.status === 429 && !waited) {
        const wait = retryAfterOf(answer.headers);
        if (wait !== undefined && wait * 1000 <= this.#maxRetryWaitMs) {
          waited = true;
          await sleep(wait * 1000 + RETRY_PAD_MS);
          continue;
        }
      }
      if (answer.status >= 400) {
        const err = parseEnvelope(answer.status, answer.headers, decode(answer.body));
        if (err) throw err;
      }
      return new ProxyResponse(answer.status, answer.headers, answer.body);
    }
  }

  // --- connect sessions ------------------------------------------------------

  /**
   * Makes a single-use connect link for one customer; send them to its `url`. With `connectionId`
   * it is a reconnect link that renews that connection.
   */
  async createConnectSession(params: ConnectSessionParams): Promise<ConnectSession> {
    const payload: Record<string, unknown> = {};
    const fields: Array<[string, unknown]> = [
      ["app_id", params.appId],
      ["customer_ref", params.customerRef],
      ["return_url", params.returnUrl],
      ["connection_id", params.connectionId],
      ["ttl_seconds", params.ttlSeconds],
      ["max_domain", params.maxDomain],
    ];
    for (const [k, v] of fields) if (v !== undefined && v !== "" && v !== 0) payload[k] = v;
    if (params.allowTransfer) payload.allow_transfer = true;
    const doc = (await this.#call("POST", "/connect-sessions", { payload })) as { id: string; url: string; expires_at: string };
    return { id: doc.id, url: doc.url, expiresAt: new Date(doc.expires_at) };
  }

  /** Revokes an unused connect link. */
  async revokeConnectSession(sessionId: string): Promise<void> {
    requireId("connect session", sessionId);
    await this.#call("DELETE", `/connect-sessions/${seg(sessionId)}`, { idempotent: true });
  }

  // --- connections -----------------------------------------------------------

  /** One connection: account, status, expiry, last refresh, last error. */
  async connection(connectionId: string): Promise<Connection> {
    requireId("connection", connectionId);
    return toConnection(await this.#call("GET", `/connections/${seg(connectionId)}`, { idempotent: true }));
  }

  /** One page of connections (`cursor` from the previous page's `nextCursor`). */
  async connectionsPage(filter: ConnectionFilter & { cursor?: string | null } = {}): Promise<ConnectionPage> {
    const query: Record<string, string | number | undefined> = {
      customer_ref: filter.customerRef || undefined,
      status: filter.status || undefined,
      app_id: filter.appId || undefined,
      limit: filter.limit || undefined,
      cursor: filter.cursor || undefined,
    };
    const doc = (await this.#call("GET", "/connections", { query, idempotent: true })) as { connections?: unknown[]; next_cursor?: string | null };
    return { connections: (doc.connections ?? []).map(toConnection), nextCursor: doc.next_cursor || null };
  }

  /**
   * Every connection the filter matches, fetched page after page as the loop goes on:
   * `for await (const conn of gc.connections({ status: "needs_reconnect" })) …`
   */
  async *connections(filter: ConnectionFilter = {}): AsyncGenerator<Connection, void, undefined> {
    let cursor: string | null = null;
    do {
      const page: ConnectionPage = await this.connectionsPage({ ...filter, cursor });
      yield* page.connections;
      cursor = page.nextCursor;
    } while (cursor);
  }

  /** Has grconnect refresh the tokens now (it always asks GetResponse); the cached token is forgotten. */
  async refresh(connectionId: string): Promise<Connection> {
    requireId("connection", connectionId);
    this.forgetToken(connectionId);
    return toConnection(await this.#call("POST", `/connections/${seg(connectionId)}/refresh`));
  }

  /** Erases the connection's tokens at grconnect; the record stays, disconnected. */
  async disconnect(connectionId: string): Promise<Connection> {
    requireId("connection", connectionId);
    this.forgetToken(connectionId);
    return toConnection(await this.#call("DELETE", `/connections/${seg(connectionId)}`, { idempotent: true }));
  }

  // --- HTTP ------------------------------------------------------------------

  /** Sends a call and returns its decoded JSON; an error answer throws ApiError. */
  async #call(method: string, route: string, opts: { query?: Query; payload?: unknown; idempotent?: boolean } = {}): Promise<unknown> {
    const headers: Record<string, string> = {};
    let body: Uint8Array | undefined;
    if (opts.payload !== undefined) {
      body = new TextEncoder().encode(JSON.stringify(opts.payload));
      headers["Content-Type"] = "application/json";
    }
    const answer = await this.#send(method, route, { query: opts.query, body, headers, idempotent: opts.idempotent ?? false });
    const text = decode(answer.body);
    if (answer.status < 200 || answer.status > 299) throw errorFrom(answer.status, answer.statusText, answer.headers, text);
    if (text === "") return {};
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new ApiError({
        status: answer.status,
        code: ErrorCode.UnexpectedResponse,
        message: `the answer is not the JSON this call expects: ${(err as Error).message}`,
        requestId: answer.headers.get("x-request-id") ?? "",
        body: text,
      });
    }
  }

  /** Sends a request, again after a transport failure when it is idempotent. */
  async #send(
    method: string,
    route: string,
    opts: { query?: Query | undefined; body?: Uint8Array | undefined; headers: Record<string, string>; idempotent: boolean },
  ): Promise<Answer> {
    let url = this.#base + route;
    const qs = queryString(opts.query);
    if (qs) url += (url.includes("?") ? "&" : "?") + qs;
    const attempts = 1 + (opts.idempotent ? this.#retries : 0);
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) await sleep(this.retryBackoffMs * 2 ** (attempt - 1) * (0.75 + Math.random() * 0.5));
      try {
        return await this.#attempt(method, url, route, opts.body, opts.headers);
      } catch (err) {
        if (!(err instanceof TransportError) || attempt + 1 >= attempts) throw err;
      }
    }
  }

  async #attempt(method: string, url: string, route: string, body: Uint8Array | undefined, headers: Record<string, string>): Promise<Answer> {
    const h = new Headers(headers);
    h.set("Authorization", `Bearer ${this.#apiKey}`);
    h.set("User-Agent", this.#userAgent);
    if (!h.has("Accept")) h.set("Accept", "application/json");
    try {
      const res = await this.#fetch(url, { method, headers: h, body, redirect: "manual", signal: AbortSignal.timeout(this.#timeoutMs) });
      return { status: res.status, statusText: res.statusText, headers: res.headers, body: new Uint8Array(await res.arrayBuffer()) };
    } catch (err) {
      const e = err as Error & { cause?: Error & { code?: string } };
      const why = e.name === "TimeoutError" ? `no answer within ${this.#timeoutMs} ms` : (e.cause?.code ?? e.cause?.message ?? e.message);
      throw new TransportError(`${method} ${route.split("?")[0]}: ${why}`, { cause: err });
    }
  }
}

interface TokenJSON {
  access_token: string;
  token_type?: string;
  expires_at: string;
}

function toConnection(raw: unknown): Connection {
  const d = raw as Record<string, unknown>;
  const acc = (d.account ?? {}) as Record<string, unknown>;
  const str = (v: unknown): string => (typeof v === "string" ? v : "");
  const time = (v: unknown): Date | null => (typeof v === "string" && v !== "" ? new Date(v) : null);
  return {
    id: str(d.id),
    appId: str(d.app_id),
    customerRef: str(d.customer_ref),
    maxDomain: str(d.max_domain),
    status: str(d.status),
    account: { id: str(acc.id), email: str(acc.email), name: str(acc.name), companyName: str(acc.company_name) },
    expiresAt: time(d.expires_at),
    lastRefreshAt: time(d.last_refresh_at),
    lastError: str(d.last_error),
    failureCount: typeof d.failure_count === "number" ? d.failure_count : 0,
    nextAttemptAt: time(d.next_attempt_at),
    connectedAt: time(d.connected_at),
    disconnectedAt: time(d.disconnected_at),
    eventsUrl: str(d.events_url),
  };
}

function queryString(query: Query | undefined): string {
  if (!query) return "";
  if (query instanceof URLSearchParams) return query.toString();
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined) continue;
    for (const item of Array.isArray(v) ? v : [v]) params.append(k, String(item));
  }
  return params.toString();
}

function decode(body: Uint8Array): string {
  return new TextDecoder().decode(body);
}

/** Escapes one path segment (an ID). */
function seg(id: string): string {
  return encodeURIComponent(id);
}

function requireId(what: string, id: string): void {
  if (!id || id.trim() === "") throw new TypeError(`the ${what} ID is empty`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
