import assert from "node:assert/strict";
import { ConnectionCaps, connectionCapsFor } from "../../peer/connection_caps.ts";

Deno.test("ConnectionCaps refuses beyond the per-address and total caps and counts releases", () => {
  const caps = new ConnectionCaps({ maxTotal: 3, maxPerAddress: 2 });
  const a1 = caps.admit("10.0.0.1");
  const a2 = caps.admit("10.0.0.1");
  assert.equal(typeof a1, "function");
  assert.equal(typeof a2, "function");
  assert.match(caps.admit("10.0.0.1") as string, /from 10\.0\.0\.1: it holds 2, the limit/);
  const b1 = caps.admit("10.0.0.2");
  assert.equal(typeof b1, "function");
  assert.match(caps.admit("10.0.0.3") as string, /3 are open, the limit/);
  (a1 as () => void)();
  (a1 as () => void)(); // idempotent
  assert.equal(caps.total, 2);
  assert.equal(typeof caps.admit("10.0.0.1"), "function");
});

Deno.test("connectionCapsFor() leaves room for every slot and queue place of one address", () => {
  const caps = connectionCapsFor(4, 16);
  assert.ok(caps.maxPerAddress > 4 + 16);
  assert.ok(caps.maxTotal >= 4 * caps.maxPerAddress);
});
