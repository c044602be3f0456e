// A local HTTP server that plays grconnect's API for the SDK's tests.
import { createServer } from "node:http";

export const API_KEY = "grc_test_key";

/**
 * Serves `handler(req) -> reply` on a loopback port and counts each "METHOD path". A reply is
 * `{ status, body, headers }`, or `{ drop: true }` to close the connection without an answer.
 */
export async function serve(t, handler) {
  const counts = new Map();
  const requests = [];
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const url = new URL(req.url, "http://localhost");
    const r = { method: req.method, path: url.pathname, query: url.searchParams, headers: req.headers, body: Buffer.concat(chunks).toString() };
    const key = `${r.method} ${r.path}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    requests.push(r);
    const reply = req.headers.authorization === `Bearer ${API_KEY}` ? await handler(r) : errorReply(401, "unauthorized", "Send a valid API key.");
    if (reply.drop) {
      req.socket.destroy();
      return;
    }
    res.writeHead(reply.status ?? 200, reply.headers ?? {});
    res.end(reply.body ?? "");
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    count: (key) => counts.get(key) ?? 0,
    last: () => requests[requests.length - 1],
    requests,
  };
}

export function jsonReply(status, doc, headers = {}) {
  return { status, body: JSON.stringify(doc), headers: { "Content-Type": "application/json", "X-Request-Id": "req_header", ...headers } };
}

export function errorReply(status, code, message = "Something is wrong.", retryAfter = 0, extra = {}) {
  const error = { code, message, request_id: `req_${code}`, ...extra };
  const headers = {};
  if (retryAfter) {
    error.retry_after = retryAfter;
    headers["Retry-After"] = String(retryAfter);
  }
  return jsonReply(status, { error }, headers);
}

export function tokenReply(token, expiresInSeconds = 3600) {
  return jsonReply(200, { access_token: token, token_type: "Bearer", expires_at: new Date(Date.now() + expiresInSeconds * 1000).toISOString() });
}
