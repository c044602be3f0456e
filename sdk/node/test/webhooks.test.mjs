import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { test } from "node:test";

import { WebhookVerificationError, verifyWebhook } from "../dist/index.js";

// The Standard Webhooks specification's published test vector (the reference libraries' signing test).
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TIMESTAMP = 1614265330;
const BODY = '{"test": 2432232314}';
const SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
const AT = new Date(TIMESTAMP * 1000);

const vector = (changes = {}) => {
  const h = { "webhook-id": MSG_ID, "webhook-timestamp": String(TIMESTAMP), "webhook-signature": SIGNATURE, ...changes };
  for (const [k, v] of Object.entries(h)) if (v === null) delete h[k];
  return h;
};

const sign = (secret, id, ts, body) => {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  return { "webhook-id": id, "webhook-timestamp": String(ts), "webhook-signature": `v1,${createHmac("sha256", key).update(`${id}.${ts}.${body}`).digest("base64")}` };
};

const reason = (secret, headers, body, now = AT) => {
  try {
    verifyWebhook(secret, headers, body, now === null ? {} : { now });
    return "";
  } catch (err) {
    assert.ok(err instanceof WebhookVerificationError, String(err));
    assert.ok(err.message);
    return err.reason;
  }
};

test("the specification's test vector", () => {
  assert.equal(sign(SECRET, MSG_ID, TIMESTAMP, BODY)["webhook-signature"], SIGNATURE);
  assert.equal(reason(SECRET, vector(), BODY), "");
  assert.equal(reason(SECRET, vector(), new TextEncoder().encode(BODY)), "");
  assert.equal(reason(SECRET, new Headers(vector()), Buffer.from(BODY)), "");
  assert.equal(reason(SECRET.replace("whsec_", ""), vector(), BODY), "");
  // Today the vector's timestamp is years old.
  assert.equal(reason(SECRET, vector(), BODY, null), "timestamp_too_old");
});

test("refusals", () => {
  const other = `whsec_${Buffer.from("another secret of thirty-two b!!").toString("base64")}`;
  const wrong = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";
  const at = (s) => new Date((TIMESTAMP + s) * 1000);
  const cases = [
    ["several signatures, one matches", SECRET, vector({ "webhook-signature": `${wrong} v1a,${wrong.slice(3)} ${SIGNATURE} v1,bm90IGJhc2U2NA` }), BODY, AT, ""],
    ["header names in any case, array values", SECRET, { "Webhook-Id": [MSG_ID], "WEBHOOK-TIMESTAMP": String(TIMESTAMP), "webhook-signature": SIGNATURE }, BODY, AT, ""],
    ["tampered body", SECRET, vector(), '{"test": 2432232315}', AT, "no_matching_signature"],
    ["re-encoded body", SECRET, vector(), '{"test":2432232314}', AT, "no_matching_signature"],
    ["wrong secret", other, vector(), BODY, AT, "no_matching_signature"],
    ["only other schemes and wrong v1", SECRET, vector({ "webhook-signature": `${wrong} v2,${SIGNATURE.slice(3)}` }), BODY, AT, "no_matching_signature"],
    ["tampered id", SECRET, vector({ "webhook-id": "msg_other" }), BODY, AT, "no_matching_signature"],
    ["five minutes old passes", SECRET, vector(), BODY, at(300), ""],
    ["five minutes ahead passes", SECRET, vector(), BODY, at(-300), ""],
    ["stale timestamp", SECRET, vector(), BODY, at(301), "timestamp_too_old"],
    ["future timestamp", SECRET, vector(), BODY, at(-301), "timestamp_too_new"],
    ["timestamp not a number", SECRET, vector({ "webhook-timestamp": "2021-02-25T15:02:10Z" }), BODY, AT, "invalid_timestamp"],
    ["timestamp with a sign", SECRET, vector({ "webhook-timestamp": "+1614265330" }), BODY, AT, "invalid_timestamp"],
    ["missing id", SECRET, vector({ "webhook-id": null }), BODY, AT, "missing_header"],
    ["missing timestamp", SECRET, vector({ "webhook-timestamp": null }), BODY, AT, "missing_header"],
    ["missing signature", SECRET, vector({ "webhook-signature": null }), BODY, AT, "missing_header"],
    ["secret not base64", "whsec_not*base64", vector(), BODY, AT, "invalid_secret"],
    ["empty secret", "", vector(), BODY, AT, "invalid_secret"],
  ];
  for (const [name, secret, headers, body, now, want] of cases) assert.equal(reason(secret, headers, body, now), want, name);
});

test("a fresh delivery against the clock", () => {
  const secret = `whsec_${Buffer.from("0123456789abcdef0123456789abcdef").toString("base64")}`;
  const body = '{"type":"connection.created","connection":{"id":"con_1"}}';
  const now = Math.floor(Date.now() / 1000);
  assert.equal(reason(secret, sign(secret, "whd_1", now, body), body, null), "");
  assert.equal(reason(secret, sign(secret, "whd_1", now - 600, body), body, null), "timestamp_too_old");
  assert.equal(reason(secret, sign(secret, "whd_1", now, body), `${body} `, null), "no_matching_signature");
});
