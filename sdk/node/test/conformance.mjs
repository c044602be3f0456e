// The SDK conformance scenario, run by sdk/conformance against a real grconnect.
//
// It talks to the Go driver one line at a time (its requests on stdout, the answers on
// stdin) and exits non-zero, saying why on stderr, when the SDK misbehaves.
import { createInterface } from "node:readline";

import { ApiError, Client, ErrorCode, Status, WebhookVerificationError, verifyWebhook } from "../dist/index.js";

const answers = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

async function ask(request) {
  process.stdout.write(`${request}\n`);
  const { value, done } = await answers.next();
  const answer = done ? "error the driver went away" : value.trim();
  if (answer.startsWith("error")) throw new Error(`the driver could not do ${request.split(" ")[0]}: ${answer}`);
  return answer;
}

function check(ok, what) {
  if (!ok) throw new Error(`conformance: ${what}`);
}

async function expectApiError(promise, want) {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error(`conformance: no error; want ${want}`);
}

const env = process.env;
const ref = env.GRCONNECT_CUSTOMER_REF;
const appId = env.GRCONNECT_APP_ID;
const gc = new Client(env.GRCONNECT_URL, env.GRCONNECT_API_KEY, { userAgent: "sdk-conformance" });

try {
  // A connect session, completed by a customer through the simulated consent.
  const session = await gc.createConnectSession({ appId, customerRef: ref });
  check(session.id && session.url.startsWith("http") && session.expiresAt > new Date(), `connect session ${JSON.stringify(session)}`);
  await ask(`consent ${session.url}`);

  const conns = [];
  for await (const c of gc.connections({ customerRef: ref })) conns.push(c);
  check(conns.length === 1, `${conns.length} connections of ${ref}; want 1`);
  const conn = await gc.connection(conns[0].id);
  check(conn.status === Status.Active && conn.appId === appId && conn.account.email === env.GRCONNECT_ACCOUNT_EMAIL, `connection ${JSON.stringify(conn)}`);

  // Two tokens, the second from the cache.
  const first = await gc.token(conn.id);
  const second = await gc.token(conn.id);
  check(first.accessToken && first.accessToken === second.accessToken, "the two tokens differ");
  check(first.expiresAt.getTime() > Date.now() + 60_000, `token expires ${first.expiresAt.toISOString()}`);
  check((await ask(`token-requests ${conn.id}`)) === "1", "the second token call was not served from the cache");

  // A GetResponse call through the proxy.
  let res = await gc.proxy(conn.id, "GET", "/from-fields");
  check(res.status === 200 && res.json().length > 0 && "fromFieldId" in res.json()[0], `GET /from-fields: ${res.status} ${res.text().slice(0, 200)}`);

  // GetResponse answers 429 with Retry-After: 1; the SDK waits it out once.
  await ask(`arm-429 ${conn.id}`);
  const start = Date.now();
  res = await gc.proxy(conn.id, "GET", "/from-fields");
  const waited = Date.now() - start;
  check(res.status === 200, `GET /from-fields after a 429: ${res.status} ${res.text().slice(0, 200)}`);
  check(waited >= 1000, `answered after ${waited} ms; the 429 asked for 1 s`);
  check((await ask(`proxy-requests ${conn.id}`)) === "3", "the 429 was not sent again exactly once");

  // An error with its code: a disconnected connection has no token.
  check((await gc.disconnect(conn.id)).status === Status.Disconnected, "disconnect");
  let err = await expectApiError(gc.token(conn.id), "disconnected");
  check(err.code === ErrorCode.Disconnected && err.status === 409 && err.requestId, `token after disconnect: ${err.message}`);
  err = await expectApiError(gc.connection("con_doesnotexist"), "not_found");
  check(err.code === "not_found" && err.status === 404, `unknown connection: ${err.message}`);

  // A real delivery verifies; a tampered copy does not.
  const hook = JSON.parse(await ask(`webhook ${conn.id}`));
  const body = Buffer.from(hook.body, "base64");
  verifyWebhook(hook.secret, hook.headers, body);
  const tampered = Buffer.from(body.toString("utf8").replace(ref, "mallory"), "utf8");
  check(!tampered.equals(body), "the delivery does not name the customer");
  try {
    verifyWebhook(hook.secret, hook.headers, tampered);
    check(false, "a tampered delivery verified");
  } catch (e) {
    check(e instanceof WebhookVerificationError && e.reason === "no_matching_signature", `tampered delivery: ${e}`);
  }

  process.stdout.write("done\n");
  process.exit(0);
} catch (err) {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exit(1);
}
