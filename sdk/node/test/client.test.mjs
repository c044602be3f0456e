import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { ApiError, Client, ErrorCode, Status, VERSION } from "../dist/index.js";
import { API_KEY, errorReply, jsonReply, serve, tokenReply } from "./fake-api.mjs";

const client = (fake, options) => new Client(fake.url, API_KEY, options);

test("the version is package.json's", () => {
  assert.equal(VERSION, JSON.parse(readFileSync(new URL("../package.json", import.meta.url))).version);
});

test("the constructor checks its arguments", () => {
  for (const base of ["", "grconnect.example.com", "ftp://x", "https://x/?a=1"]) {
    assert.throws(() => new Client(base, "k"), TypeError, base);
  }
  assert.throws(() => new Client("https://x", " "), TypeError);
});

test("requests carry the key and the user agent", async (t) => {
  const fake = await serve(t, () =>
    jsonReply(200, { id: "con_1", status: "active", account: { email: "a@example.com", company_name: "Acme" }, connected_at: "2030-01-02T03:04:05.123456789Z", expires_at: null }),
  );
  const conn = await client(fake, { userAgent: "billing/1.2" }).connection("con_1");
  assert.equal(conn.id, "con_1");
  assert.equal(conn.status, Status.Active);
  assert.equal(conn.account.companyName, "Acme");
  assert.equal(conn.connectedAt.toISOString(), "2030-01-02T03:04:05.123Z");
  assert.equal(conn.expiresAt, null);
  assert.equal(fake.last().headers["user-agent"], `billing/1.2 grconnect-node/${VERSION}`);
  assert.equal(fake.last().path, "/api/v1/connections/con_1");
  await assert.rejects(new Client(fake.url, "grc_wrong").connection("con_1"), (err) => err instanceof ApiError && err.code === ErrorCode.Unauthorized);
});

test("the second token call is served from the cache", async (t) => {
  let n = 0;
  const fake = await serve(t, () => tokenReply(`access-${++n}`));
  const gc = client(fake);
  const first = await gc.token("con_1");
  const second = await gc.token("con_1");
  assert.equal(first.accessToken, "access-1");
  assert.deepEqual(second, first);
  assert.ok(first.expiresAt instanceof Date && first.expiresAt > new Date());
  assert.equal(fake.count("POST /api/v1/connections/con_1/token"), 1);
  assert.equal((await gc.token("con_2")).accessToken, "access-2"); // each connection has its own entry
  gc.forgetToken("con_1");
  assert.equal((await gc.token("con_1")).accessToken, "access-3");
});

test("a token inside the margin is asked again", async (t) => {
  const fake = await serve(t, () => tokenReply("short", 30));
  const gc = client(fake); // margin 60 s
  for (let i = 0; i < 3; i++) assert.equal((await gc.token("con_1")).accessToken, "short");
  assert.equal(fake.count("POST /api/v1/connections/con_1/token"), 3);
  const narrow = client(fake, { tokenMarginMs: 10_000 });
  await narrow.token("con_9");
  await narrow.token("con_9");
  assert.equal(fake.count("POST /api/v1/connections/con_9/token"), 1);
});

test("concurrent callers share one token request", async (t) => {
  let release;
  const released = new Promise((resolve) => (release = resolve));
  let arrived;
  const firstArrived = new Promise((resolve) => (arrived = resolve));
  const fake = await serve(t, async () => {
    arrived();
    await released;
    return tokenReply("shared");
  });
  const gc = client(fake);
  const calls = Array.from({ length: 25 }, () => gc.token("con_1"));
  await firstArrived;
  await new Promise((resolve) => setTimeout(resolve, 150)); // time for any further request to arrive
  release();
  const tokens = await Promise.all(calls);
  assert.deepEqual(new Set(tokens.map((tok) => tok.accessToken)), new Set(["shared"]));
  assert.equal(fake.count("POST /api/v1/connections/con_1/token"), 1);
});

test("a shared failure reaches every caller and is not cached", async (t) => {
  const fake = await serve(t, () => errorReply(503, "getresponse_unavailable", "GetResponse is down.", 30));
  const gc = client(fake);
  const results = await Promise.allSettled(Array.from({ length: 5 }, () => gc.token("con_1")));
  for (const r of results) {
    assert.equal(r.status, "rejected");
    assert.equal(r.reason.code, ErrorCode.GetResponseUnavailable);
    assert.equal(r.reason.retryAfterSeconds, 30);
  }
  assert.equal(fake.count("POST /api/v1/connections/con_1/token"), 1);
  await assert.rejects(gc.token("con_1"), ApiError);
  assert.equal(fake.count("POST /api/v1/connections/con_1/token"), 2);
});

test("disconnect forgets the token and the next token call fails with its code", async (t) => {
  let disconnected = false;
  const fake = await serve(t, (r) => {
    if (r.method === "DELETE") {
      disconnected = true;
      return jsonReply(200, { id: "con_1", status: "disconnected", expires_at: null });
    }
    return disconnected ? errorReply(409, "disconnected", "This connection is disconnected.") : tokenReply("live");
  });
  const gc = client(fake);
  await gc.token("con_1");
  const conn = await gc.disconnect("con_1");
  assert.equal(conn.status, Status.Disconnected);
  await assert.rejects(gc.token("con_1"), (err) => {
    assert.ok(err instanceof ApiError);
    assert.deepEqual([err.code, err.status, err.requestId, err.detail], ["disconnected", 409, "req_disconnected", "This connection is disconnected."]);
    assert.match(err.message, /disconnected \(HTTP 409\)/);
    return true;
  });
});

test("empty IDs are refused before any request", async (t) => {
  const fake = await serve(t, () => ({ status: 500 }));
  const gc = client(fake);
  await assert.rejects(gc.token(""), TypeError);
  await assert.rejects(gc.disconnect(" "), TypeError);
  await assert.rejects(gc.proxy("con_1", "GET", "https://evil.example/x"), TypeError);
  assert.equal(fake.requests.length, 0);
});

test("errors carry the API's fields", async (t) => {
  const cases = [
    [409, { code: "needs_reconnect", message: "m", request_id: "r1", reconnect: { method: "POST", path: "/api/v1/connect-sessions", body: { connection_id: "con_1" } } }, {},
      (e) => assert.deepEqual(e.reconnect.body, { connection_id: "con_1" })],
    [409, { code: "app_credentials_rejected", message: "m", request_id: "r2", app: { id: "app_1", name: "Acme", health: "credentials_rejected" } }, {},
      (e) => assert.equal(e.app.name, "Acme")],
    [503, { code: "getresponse_unavailable", message: "m", request_id: "r3", retry_after: 30 }, { "Retry-After": "30" }, (e) => assert.equal(e.retryAfterSeconds, 30)],
    [403, { code: "insufficient_scope", message: "m", request_id: "r4", scope: "tokens:read" }, {}, (e) => assert.equal(e.retryAfterSeconds, undefined)],
    [429, { code: "refresh_too_soon", message: "m", request_id: "r5" }, { "Retry-After": "12" }, (e) => assert.equal(e.retryAfterSeconds, 12)],
    [400, { code: "invalid_input", message: "m", request_id: "r6", fields: { status: "Use one of …" } }, {}, (e) => assert.deepEqual(e.fields, { status: "Use one of …" })],
    [418, { code: "brand_new_code", message: "m", request_id: "r7" }, {}, () => {}],
  ];
  for (const [status, error, headers, check] of cases) {
    const fake = await serve(t, () => jsonReply(status, { error }, headers));
    await assert.rejects(client(fake).refresh("con_1"), (e) => {
      assert.ok(e instanceof ApiError, error.code);
      assert.deepEqual([e.status, e.code, e.detail, e.requestId], [status, error.code, "m", error.request_id]);
      assert.equal(JSON.parse(e.body).error.code, error.code);
      check(e);
      return true;
    });
  }
});

test("an answer without the envelope", async (t) => {
  const fake = await serve(t, () => ({ status: 502, body: "<html>Bad gateway</html>", headers: { "X-Request-Id": "r8", "Content-Type": "text/html" } }));
  await assert.rejects(client(fake).connection("con_1"), (e) => {
    assert.deepEqual([e.status, e.code, e.requestId], [502, ErrorCode.UnexpectedResponse, "r8"]);
    return true;
  });
});

test("connections pages through every connection", async (t) => {
  const ids = ["con_1", "con_2", "con_3", "con_4", "con_5"];
  const fake = await serve(t, (r) => {
    const q = r.query;
    if (q.get("status") !== "active" || q.get("customer_ref") !== "cust 7" || q.get("limit") !== "2") return errorReply(400, "invalid_input", `unexpected query ${q}`);
    const start = Number((q.get("cursor") ?? "c0").slice(1));
    const end = Math.min(start + 2, ids.length);
    return jsonReply(200, { connections: ids.slice(start, end).map((id) => ({ id, status: "active" })), next_cursor: end < ids.length ? `c${end}` : null });
  });
  const gc = client(fake);
  const filter = { status: Status.Active, customerRef: "cust 7", limit: 2 };
  const got = [];
  for await (const conn of gc.connections(filter)) got.push(conn.id);
  assert.deepEqual(got, ids);
  assert.equal(fake.count("GET /api/v1/connections"), 3);
  // Stopping early fetches no further page.
  for await (const conn of gc.connections(filter)) {
    assert.equal(conn.id, "con_1");
    break;
  }
  assert.equal(fake.count("GET /api/v1/connections"), 4);
  const last = await gc.connectionsPage({ ...filter, cursor: "c4" });
  assert.deepEqual([last.connections.map((c) => c.id), last.nextCursor], [["con_5"], null]);
  await assert.rejects(async () => {
    for await (const _ of gc.connections()) void _;
  }, (e) => e.code === "invalid_input");
});

test("connect sessions send only what is given", async (t) => {
  const fake = await serve(t, (r) =>
    r.method === "POST" ? jsonReply(201, { id: "lnk_1", url: "https://gc.example/connect/abc", expires_at: "2030-01-02T03:04:05Z" }) : { status: 204 },
  );
  const gc = client(fake);
  const s = await gc.createConnectSession({ appId: "app_1", customerRef: "cust-7", ttlSeconds: 3600, allowTransfer: true });
  assert.deepEqual([s.id, s.url, s.expiresAt.getUTCFullYear()], ["lnk_1", "https://gc.example/connect/abc", 2030]);
  const req = fake.last();
  assert.deepEqual([req.method, req.path, req.headers["content-type"]], ["POST", "/api/v1/connect-sessions", "application/json"]);
  assert.deepEqual(JSON.parse(req.body), { app_id: "app_1", customer_ref: "cust-7", ttl_seconds: 3600, allow_transfer: true });
  await gc.createConnectSession({ connectionId: "con_1" });
  assert.deepEqual(JSON.parse(fake.last().body), { connection_id: "con_1" });
  await gc.revokeConnectSession("lnk_1");
  assert.deepEqual([fake.last().method, fake.last().path], ["DELETE", "/api/v1/connect-sessions/lnk_1"]);
});
