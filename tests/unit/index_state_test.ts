import assert from "node:assert/strict";
import { describeIndexState, type IndexTarget, unavailableReason } from "../../peer/index_state.ts";

const discovering: IndexTarget = { servers: [], announcePort: 7071, self: "alpha:4000" };
const given: IndexTarget = { servers: ["10.0.0.5:7070"], announcePort: 7071, self: "alpha:4000" };

Deno.test("describeIndexState() says the peer is looking until a server is found", () => {
  assert.equal(
    describeIndexState({ kind: "looking", attempts: 0 }, discovering),
    "looking for an index server (probing UDP 7071)",
  );
  assert.equal(
    describeIndexState({ kind: "looking", attempts: 0 }, given),
    "looking for an index server (trying 10.0.0.5:7070)",
  );
  assert.equal(
    describeIndexState({ kind: "looking", attempts: 3 }, discovering),
    "looking for an index server: no index server found yet (still looking on UDP 7071, " +
      "3 attempts; start one with `make server` or give --server HOST:PORT)",
  );
});

Deno.test("unavailableReason() says why and what to do, for each state", () => {
  assert.equal(
    unavailableReason({ kind: "looking", attempts: 1 }, discovering),
    "no index server found yet (still looking on UDP 7071, 1 attempt; " +
      "start one with `make server` or give --server HOST:PORT)",
  );
  assert.equal(
    unavailableReason(
      { kind: "looking", attempts: 2, lastError: "Connection refused (os error 111)" },
      given,
    ),
    "no index server answers yet (still trying 10.0.0.5:7070, 2 attempts; last error: " +
      "Connection refused (os error 111); is it running? start one with `make server`)",
  );
  assert.equal(
    unavailableReason(
      { kind: "reconnecting", server: "10.0.0.5:7070", attempts: 4, lastError: "refused" },
      given,
    ),
    "not connected: lost the index server 10.0.0.5:7070; reconnecting (attempt 4, last error: refused)",
  );
  const replaced = {
    kind: "replaced",
    server: "10.0.0.5:7070",
    notice: "Cannot keep this session: replaced by a new one from 10.0.0.9:51000",
  } as const;
  const expected = "this peer's index session was replaced by another peer registering as " +
    "alpha:4000 (index 10.0.0.5:7070 says: replaced by a new one from 10.0.0.9:51000); " +
    "run `reconnect` (or restart) to take it back";
  assert.equal(unavailableReason(replaced, given), expected);
  assert.equal(describeIndexState(replaced, given), expected);
  // A notice in another wording is quoted whole.
  assert.match(
    describeIndexState({ ...replaced, notice: "replaced through another server" }, given),
    /\(index 10\.0\.0\.5:7070 says: replaced through another server\)/,
  );
  assert.equal(
    describeIndexState({ kind: "connected", server: "10.0.0.5:7070" }, given),
    "connected to the index server 10.0.0.5:7070",
  );
});
