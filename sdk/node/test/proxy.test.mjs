import assert from "node:assert/strict";
import { test } from "node:test";

import { ApiError, Client, TransportError } from "../dist/index.js";
import { API_KEY, errorReply, jsonReply, serve, tokenReply } from "./fake-api.mjs";

const client = (fake, options) => {
  const gc = new Client(fake.url, API_KEY, options);
  gc.retryBackoffMs = 20;
  return gc;
};

const getResponse429 = (retryAfter) => ({
  status: 429,
  body: '{"httpStatus":429,"code":1015,"message":"Too many requests"}',
  headers: { "Content-Type": "application/json", ...(retryAfter === undefined ? {} : { "Retry-After": retryAfter }) },
});

/** Closes the connection of the first request of each "METHOD path" without an answer; answers the next ones. */
const dropFirst = (t, answer = () => jsonReply(200, { ok: true })) => {
  const seen = new Set();
  return serve(t, (r) => {
    const key = `${r.method} ${r.path}`;
    if (seen.has(key)) return answer(r);
    seen.add(key);
    return { drop: true };
  });
};

test("the proxy sends the call and returns GetResponse's answer", async (t) => {
  const fake = await serve(t, (r) =>
    r.path.endsWith("/contacts/abc")
      ? { status: 404, body: '{"httpStatus":404,"code":1013,"message":"Resource not found"}', headers: { "X-RateLimit-Remaining": "79" } }
      : jsonReply(200, [{ fromFieldId: "V", email: "a@example.com" }]),
  );
  const gc = client(fake);
  let res = await gc.proxy("con_1", "GET", "/from-fields", { query: { fields: "email" } });
  assert.ok(res.ok);
  assert.equal(res.json()[0].fromFieldId, "V");
  assert.deepEqual([fake.last().method, fake.last().path, fake.last().query.toString()], ["GET", "/api/v1/connections/con_1/proxy/from-fields", "fields=email"]);
  // GetResponse's error is an answer, not an exception.
  res = await gc.proxy("con_1", "GET", "contacts/abc");
  assert.deepEqual([res.status, res.headers.get("x-ratelimit-remaining"), res.json().code], [404, "79", 1013]);
  // A JSON body goes out encoded, with its content type.
  await gc.proxy("con_1", "post", "/contacts", { json: { email: "b@example.com" } });
  assert.deepEqual([fake.last().method, fake.last().headers["content-type"], fake.last().body], ["POST", "application/json", '{"email":"b@example.com"}']);
});

test("grconnect's own refusals throw", async (t) => {
  const fake = await serve(t, () => errorReply(409, "needs_reconnect", "The customer must approve access again."));
  await assert.rejects(client(fake).proxy("con_1", "GET", "/from-fields"), (e) => e instanceof ApiError && e.code === "needs_reconnect");
});

test("a 429 is waited out once", async (t) => {
  let n = 0;
  const fake = await serve(t, () => (++n === 1 ? getResponse429("1") : jsonReply(200, [])));
  const start = Date.now();
  const res = await client(fake).proxy("con_1", "POST", "/contacts", { body: '{"email":"x@example.com"}' });
  assert.equal(res.status, 200);
  assert.ok(Date.now() - start >= 1000, `answered after ${Date.now() - start} ms; the 429 asked for 1 s`);
  assert.deepEqual([fake.last().body, fake.last().headers["content-type"]], ['{"email":"x@example.com"}', "application/json"]);
  // A 429 means the call was not made, so even a POST is sent again.
  assert.equal(fake.count("POST /api/v1/connections/con_1/proxy/contacts"), 2);
});

test("a 429 is waited out only once", async (t) => {
  const fake = await serve(t, () => getResponse429("1"));
  const res = await client(fake).proxy("con_1", "GET", "/from-fields");
  assert.equal(res.status, 429);
  assert.equal(fake.count("GET /api/v1/connections/con_1/proxy/from-fields"), 2);
  const own = await serve(t, () => errorReply(429, "rate_limited", "Wait.", 1));
  await assert.rejects(client(own).proxy("con_1", "GET", "/from-fields"), (e) => e.code === "rate_limited" && e.retryAfterSeconds === 1);
  assert.equal(own.count("GET /api/v1/connections/con_1/proxy/from-fields"), 2);
});

test("no wait beyond the maximum or without Retry-After", async (t) => {
  const fake = await serve(t, (r) => getResponse429(r.query.has("long") ? "120" : undefined));
  const gc = client(fake, { maxRetryWaitMs: 5000 });
  const start = Date.now();
  assert.equal((await gc.proxy("con_1", "GET", "/from-fields", { query: { long: 1 } })).status, 429);
  assert.equal((await gc.proxy("con_1", "GET", "/from-fields")).status, 429);
  assert.ok(Date.now() - start < 500);
  assert.equal(fake.count("GET /api/v1/connections/con_1/proxy/from-fields"), 2);
});

test("transport failures are retried for idempotent calls only", async (t) => {
  const fake = await dropFirst(t);
  const gc = client(fake);
  for (const m of ["GET", "PUT", "DELETE"]) {
    assert.equal((await gc.proxy("con_1", m, "/contacts/x")).status, 200, m);
    assert.equal(fake.count(`${m} /api/v1/connections/con_1/proxy/contacts/x`), 2, m);
  }
  for (const m of ["POST", "PATCH"]) {
    await assert.rejects(gc.proxy("con_1", m, "/contacts/x"), TransportError, m);
    assert.equal(fake.count(`${m} /api/v1/connections/con_1/proxy/contacts/x`), 1, m);
  }
  // Creating a connect session is not idempotent; asking for a token is.
  await assert.rejects(gc.createConnectSession({ appId: "app_1", customerRef: "c" }), TransportError);
  assert.equal(fake.count("POST /api/v1/connect-sessions"), 1);
  const tokens = await dropFirst(t, () => tokenReply("t"));
  await assert.rejects(client(tokens, { retries: 0 }).token("con_1"), TransportError);
  assert.equal(tokens.count("POST /api/v1/connections/con_1/token"), 1);
  assert.equal((await client(tokens).token("con_2")).accessToken, "t");
  assert.equal(tokens.count("POST /api/v1/connections/con_2/token"), 2);
});

test("a timeout is a transport error", async (t) => {
  const fake = await serve(t, () => new Promise((resolve) => setTimeout(() => resolve(jsonReply(200, {})), 1000)));
  await assert.rejects(client(fake, { timeoutMs: 100, retries: 0 }).connection("con_1"), (e) => e instanceof TransportError && /100 ms/.test(e.message));
});

test("redirects are not followed", async (t) => {
  const fake = await serve(t, () => ({ status: 302, headers: { Location: "/api/v1/elsewhere" } }));
  await assert.rejects(client(fake).connection("con_1"), (e) => e.status === 302 && e.code === "unexpected_response");
  assert.equal(fake.count("GET /api/v1/elsewhere"), 0);
});
