/** A connection's GetResponse access token. */
export interface Token {
  accessToken: string;
  tokenType: string;
  expiresAt: Date;
}

/** The states of a connection. */
export const Status = {
  Active: "active",
  RefreshFailing: "refresh_failing",
  NeedsReconnect: "needs_reconnect",
  Disconnected: "disconnected",
} as const;

export type StatusValue = (typeof Status)[keyof typeof Status] | (string & {});

/** The GetResponse account behind a connection. */
export interface Account {
  id: string;
  email: string;
  name: string;
  companyName: string;
}

/** One customer's connected GetResponse account. It never holds a token. */
export interface Connection {
  id: string;
  appId: string;
  customerRef: string;
  maxDomain: string;
  status: StatusValue;
  account: Account;
  /** When the access token expires; null once disconnected. */
  expiresAt: Date | null;
  lastRefreshAt: Date | null;
  lastError: string;
  failureCount: number;
  nextAttemptAt: Date | null;
  connectedAt: Date | null;
  disconnectedAt: Date | null;
  /** Where GetResponse's webhooks for this account go, when the server offers it. */
  eventsUrl: string;
}

/** Narrows a list of connections; absent fields do not filter. */
export interface ConnectionFilter {
  customerRef?: string;
  status?: StatusValue;
  appId?: string;
  /** The page size, 1 to 500 (default: the server's, 50). */
  limit?: number;
}

/** One page of connections; `nextCursor` is null on the last. */
export interface ConnectionPage {
  connections: Connection[];
  nextCursor: string | null;
}

/** Describes a connect link. */
export interface ConnectSessionParams {
  /** The app the customer connects to (may be left out with `connectionId`). */
  appId?: string;
  /** Your own ID of the customer (may be left out with `connectionId`). */
  customerRef?: string;
  /** Where the customer is sent back; must be on one of the app's return origins. */
  returnUrl?: string;
  /** Makes a reconnect link, which renews that connection. */
  connectionId?: string;
  /** How long the link works (default 7 days). */
  ttlSeconds?: number;
  /** Lets the flow move a connection of the same GetResponse account from another customer. */
  allowTransfer?: boolean;
  /** The customer's GetResponse MAX domain, when known. */
  maxDomain?: string;
}

/** A single-use connect link for one customer: send them to `url`. */
export interface ConnectSession {
  id: string;
  url: string;
  expiresAt: Date;
}

/** Query parameters of a proxied call. */
export type Query =
  | URLSearchParams
  | Record<string, string | number | boolean | ReadonlyArray<string | number | boolean> | undefined>;

/** The parts of a proxied call besides its method and path. */
export interface ProxyOptions {
  query?: Query;
  /** A body sent encoded as JSON (unless `body` is given). */
  json?: unknown;
  /** A body sent as it is (as application/json unless `headers` names another Content-Type). */
  body?: string | Uint8Array;
  headers?: Record<string, string>;
}

/** GetResponse's answer through the proxy, whatever its status. */
export class ProxyResponse {
  constructor(
    readonly status: number,
    readonly headers: Headers,
    readonly body: Uint8Array,
  ) {}

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  text(): string {
    return new TextDecoder().decode(this.body);
  }

  json<T = unknown>(): T {
    return JSON.parse(this.text()) as T;
  }
}
