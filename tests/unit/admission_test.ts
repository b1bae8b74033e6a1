import assert from "node:assert/strict";
import { Admission, type Admitted, isRefusal, type Refusal } from "../../server/admission.ts";

const LIMITS = { maxConnections: 4, maxUnregisteredPerAddress: 2, maxSessionsPerAddress: 1 };

function admitted(value: Admitted | Refusal): Admitted {
  if (isRefusal(value)) throw new Error(`refused: ${value.message}`);
  return value;
}

function refusedBy(value: Admitted | Refusal | undefined): string | undefined {
  return value !== undefined && isRefusal(value) ? value.flag : undefined;
}

Deno.test("Admission.admit() caps unregistered connections per address", () => {
  const admission = new Admission(LIMITS);
  const a = admitted(admission.admit("10.0.0.1"));
  admitted(admission.admit("10.0.0.1"));
  assert.equal(refusedBy(admission.admit("10.0.0.1")), "--max-unregistered-per-address");
  admitted(admission.admit("10.0.0.2"));
  assert.equal(a.register(), undefined, "a registered connection leaves the unregistered count");
  admitted(admission.admit("10.0.0.1"));
});

Deno.test("Admission.admit() caps connections in total and release() gives them back", () => {
  const admission = new Admission(LIMITS);
  const held = ["a", "b", "c", "d"].map((host) => admitted(admission.admit(host)));
  const refusal = admission.admit("e");
  assert.equal(refusedBy(refusal), "--max-connections");
  assert.match((refusal as Refusal).message, /^Cannot accept the connection: .* 4 connections$/);
  held[0]!.release();
  held[0]!.release(); // idempotent
  assert.equal(admission.connections, 3);
  admitted(admission.admit("e"));
});

Deno.test("Admitted.register() caps sessions per address; unregister() undoes it", () => {
  const admission = new Admission(LIMITS);
  const first = admitted(admission.admit("10.0.0.1"));
  const second = admitted(admission.admit("10.0.0.1"));
  assert.equal(first.register(), undefined);
  assert.equal(refusedBy(second.register()), "--max-sessions-per-address");
  first.unregister();
  assert.equal(second.register(), undefined);
  assert.throws(() => second.register(), /already/);
  second.release();
  assert.equal(first.register(), undefined, "the released session's place is free");
});
