/**
 * Client of grconnect's JSON API for the operator's backend: fresh GetResponse access tokens for
 * a connection (cached until shortly before they expire), GetResponse calls through grconnect's
 * proxy, connect sessions for customers, the connections themselves, and verification of
 * grconnect's webhooks (Standard Webhooks). No dependencies beyond Node's own modules.
 */
export { Client, IDEMPOTENT_METHODS, type ClientOptions } from "./client.js";
export {
  ApiError,
  ErrorCode,
  GrconnectError,
  TransportError,
  WebhookVerificationError,
  type AppRef,
  type ErrorCodeValue,
  type ReconnectHint,
  type WebhookFailure,
} from "./errors.js";
export {
  ProxyResponse,
  Status,
  type Account,
  type Connection,
  type ConnectionFilter,
  type ConnectionPage,
  type ConnectSession,
  type ConnectSessionParams,
  type ProxyOptions,
  type Query,
  type StatusValue,
  type Token,
} from "./types.js";
export { VERSION } from "./version.js";
export { WEBHOOK_TOLERANCE_SECONDS, verifyWebhook, type WebhookHeaders } from "./webhooks.js";
