import { createHmac, timingSafeEqual } from "node:crypto";

import { WebhookVerificationError } from "./errors.js";

/** How far webhook-timestamp may be from the receiver's clock, either way (seconds). */
export const WEBHOOK_TOLERANCE_SECONDS = 5 * 60;

/** Request headers as a Fetch `Headers`, Node's `IncomingHttpHeaders` or a plain object (names in any case). */
export type WebhookHeaders = Headers | Record<string, string | string[] | undefined>;

/**
 * Checks a webhook grconnect sent; throws a WebhookVerificationError if it fails.
 *
 * As the Standard Webhooks specification (standardwebhooks.com) defines it: the HMAC-SHA256 of
 * `"<webhook-id>.<webhook-timestamp>.<body>"` keyed with the secret (`whsec_<base64 key>`, shown
 * once when the app's webhook was set) must match one of the `v1,<base64>` signatures in
 * `webhook-signature` (compared in constant time), and `webhook-timestamp` must be within five
 * minutes of now.
 *
 * @param body the raw request body, exactly as received (not re-encoded JSON).
 * @param options.now the time to check the timestamp against (tests); default the clock.
 *
 * Use `webhook-id` (the same for every attempt of one delivery) to act on each delivery once.
 */
export function verifyWebhook(secret: string, headers: WebhookHeaders, body: string | Uint8Array, options: { now?: Date } = {}): void {
  const key = webhookKey(secret);
  const id = header(headers, "webhook-id");
  const stamp = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  for (const [name, value] of [
    ["webhook-id", id],
    ["webhook-timestamp", stamp],
    ["webhook-signature", signatures],
  ] as const) {
    if (value === "") throw new WebhookVerificationError("missing_header", `the ${name} header is missing`);
  }
  if (!/^\d+$/.test(stamp)) throw new WebhookVerificationError("invalid_timestamp", `webhook-timestamp ${JSON.stringify(stamp)} is not Unix seconds`);
  const sent = Number(stamp);
  const now = Math.floor((options.now ?? new Date()).getTime() / 1000);
  if (now - sent > WEBHOOK_TOLERANCE_SECONDS) throw new WebhookVerificationError("timestamp_too_old", "webhook-timestamp is more than 5 minutes in the past");
  if (sent - now > WEBHOOK_TOLERANCE_SECONDS) throw new WebhookVerificationError("timestamp_too_new", "webhook-timestamp is more than 5 minutes in the future");
  const raw = typeof body === "string" ? Buffer.from(body, "utf8") : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const expected = createHmac("sha256", key).update(`${id}.${stamp}.`).update(raw).digest();
  for (const entry of signatures.split(/\s+/)) {
    const comma = entry.indexOf(",");
    if (comma < 0 || entry.slice(0, comma) !== "v1") continue; // another scheme (v1a) or a malformed entry
    const sig = entry.slice(comma + 1);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(sig)) continue;
    const given = Buffer.from(sig, "base64");
    if (given.length === expected.length && timingSafeEqual(given, expected)) return;
  }
  throw new WebhookVerificationError("no_matching_signature", "no v1 signature in webhook-signature matches the body and the secret");
}

/** Decodes a `whsec_<base64>` secret (the prefix may be left out). */
function webhookKey(secret: string): Buffer {
  const encoded = secret.trim().replace(/^whsec_/, "");
  if (encoded === "" || !/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) {
    throw new WebhookVerificationError("invalid_secret", "the secret is not whsec_ followed by base64");
  }
  return Buffer.from(encoded, "base64");
}

/** A header's value whatever the case of its name. */
function header(headers: WebhookHeaders, name: string): string {
  if (headers instanceof Headers) return (headers.get(name) ?? "").trim();
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() !== name || v === undefined) continue;
    return (Array.isArray(v) ? (v[0] ?? "") : v).trim();
  }
  return "";
}
