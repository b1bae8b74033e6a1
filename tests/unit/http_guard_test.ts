// The UI access checks, request by request: Host, Origin, token; and the --ui flag.
import assert from "node:assert/strict";
import { allowedHosts, checkRequest, cookieName, type UiAccess } from "../../shared/http/guard.ts";
import { HttpError } from "../../shared/http/json.ts";
import { parseUiFlag } from "../../shared/http/ui_flag.ts";

const TOKEN = "ab".repeat(32);
const ACCESS: UiAccess = {
  token: TOKEN,
  port: 7080,
  hosts: allowedHosts("127.0.0.1", 7080),
  anyIpHost: false,
};

function req(method: string, headers: Record<string, string>): Request {
  return new Request("http://127.0.0.1:7080/api/status", { method, headers });
}

function status(fn: () => void): number {
  try {
    fn();
    return 200;
  } catch (err) {
    assert.ok(err instanceof HttpError);
    return err.status;
  }
}

Deno.test("checkRequest() accepts the token as bearer or cookie on the bound host", () => {
  const bearer = { host: "127.0.0.1:7080", authorization: `Bearer ${TOKEN}` };
  assert.equal(status(() => checkRequest(req("GET", bearer), ACCESS)), 200);
  const cookie = { host: "localhost:7080", cookie: `a=b; ${cookieName(7080)}=${TOKEN}` };
  assert.equal(status(() => checkRequest(req("GET", cookie), ACCESS)), 200);
});

Deno.test("checkRequest() refuses a missing, short or wrong token with 401", () => {
  for (
    const auth of [undefined, "Bearer ", `Bearer ${TOKEN.slice(1)}`, `Bearer ${"cd".repeat(32)}`]
  ) {
    const headers: Record<string, string> = { host: "127.0.0.1:7080" };
    if (auth) headers.authorization = auth;
    assert.equal(status(() => checkRequest(req("GET", headers), ACCESS)), 401, auth);
  }
  const otherPort = { host: "127.0.0.1:7080", cookie: `${cookieName(7090)}=${TOKEN}` };
  assert.equal(status(() => checkRequest(req("GET", otherPort), ACCESS)), 401);
});

Deno.test("checkRequest() refuses foreign hosts before looking at the token (403)", () => {
  for (const host of ["evil.example", "evil.example:7080", "127.0.0.1:7081", "10.0.0.5:7080", ""]) {
    const headers = { host, authorization: `Bearer ${TOKEN}` };
    assert.equal(status(() => checkRequest(req("GET", headers), ACCESS)), 403, host);
  }
  const wildcard = { ...ACCESS, hosts: allowedHosts("0.0.0.0", 7080), anyIpHost: true };
  const lan = { host: "10.0.0.5:7080", authorization: `Bearer ${TOKEN}` };
  assert.equal(status(() => checkRequest(req("GET", lan), wildcard)), 200);
  const named = { host: "evil.example:7080", authorization: `Bearer ${TOKEN}` };
  assert.equal(status(() => checkRequest(req("GET", named), wildcard)), 403);
});

Deno.test("checkRequest() refuses state changes from another origin (403), not programs", () => {
  const base = { host: "127.0.0.1:7080", authorization: `Bearer ${TOKEN}` };
  const cases: [Record<string, string>, number][] = [
    [{ origin: "http://127.0.0.1:7080" }, 200],
    [{}, 200],
    [{ "sec-fetch-site": "same-origin" }, 200],
    [{ origin: "http://evil.example" }, 403],
    [{ origin: "http://127.0.0.1:7081" }, 403],
    [{ origin: "null" }, 403],
    [{ "sec-fetch-site": "cross-site" }, 403],
    [{ "sec-fetch-site": "same-site" }, 403],
  ];
  for (const [extra, expected] of cases) {
    for (const method of ["POST", "PUT", "DELETE"]) {
      const got = status(() => checkRequest(req(method, { ...base, ...extra }), ACCESS));
      assert.equal(got, expected, `${method} ${JSON.stringify(extra)}`);
    }
  }
  // Reads are not state changes: a cross-origin GET still needs the token, which it lacks.
  const get = { ...base, origin: "http://evil.example" };
  assert.equal(status(() => checkRequest(req("GET", get), ACCESS)), 200);
});

Deno.test("parseUiFlag() reads HOST:PORT, port 0 and off; only the default falls back", () => {
  assert.deepEqual(parseUiFlag("127.0.0.1:7080", "127.0.0.1:7080"), {
    hostname: "127.0.0.1",
    port: 7080,
    nextPorts: 20,
  });
  assert.deepEqual(parseUiFlag("0.0.0.0:8000", "127.0.0.1:7080"), {
    hostname: "0.0.0.0",
    port: 8000,
    nextPorts: 0,
  });
  assert.deepEqual(parseUiFlag("[::1]:0", "127.0.0.1:7080"), {
    hostname: "::1",
    port: 0,
    nextPorts: 0,
  });
  assert.equal(parseUiFlag("off", "127.0.0.1:7080"), null);
  for (const bad of ["on", "7080", "host:", "host:99999", ":80"]) {
    assert.throws(() => parseUiFlag(bad, "127.0.0.1:7080"), RangeError, bad);
  }
});
