import assert from "node:assert/strict";
import {
  addressKey,
  Admission,
  type Admitted,
  isRefusal,
  type Refusal,
} from "../../server/admission.ts";

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

Deno.test("addressKey() counts IPv4 as is and IPv6 by its /64", () => {
  assert.equal(addressKey("10.0.0.7"), "10.0.0.7");
  assert.equal(addressKey("::ffff:10.0.0.7"), "10.0.0.7");
  assert.equal(addressKey("2001:db8:0:1:a:b:c:d"), "2001:db8:0:1::/64");
  assert.equal(addressKey("2001:DB8:0000:0001::1"), "2001:db8:0:1::/64");
  assert.equal(addressKey("2001:db8::1"), "2001:db8:0:0::/64");
  assert.equal(addressKey("fe80::1%eth0"), "fe80:0:0:0::/64");
  assert.equal(addressKey("::1"), "0:0:0:0::/64");
});

Deno.test("Admission.admit() counts the addresses of one IPv6 /64 together", () => {
  const admission = new Admission(LIMITS);
  admitted(admission.admit("2001:db8:0:1::10"));
  admitted(admission.admit("2001:db8:0:1::11"));
  assert.equal(refusedBy(admission.admit("2001:db8:0:1::12")), "--max-unregistered-per-address");
  admitted(admission.admit("2001:db8:0:2::12"));
});
