// The trust anchor a fetcher pins a source's ID with (shared/pin_cert.ts). Pure; the TLS
// handshakes it allows and refuses are in tests/integration/p2p_tls_test.ts.
import assert from "node:assert/strict";
import { createIdentity, idOfCert } from "../../shared/identity.ts";
import { pinCertOfId } from "../../shared/pin_cert.ts";

Deno.test("pinCertOfId() carries the ID's key: idOfCert() reads the same ID back", async () => {
  const device = await createIdentity();
  assert.equal(idOfCert(pinCertOfId(device.id)), device.id);
});

Deno.test("pinCertOfId() is a function of the ID: same ID, same bytes; another ID, others", async () => {
  const [a, b] = [await createIdentity(), await createIdentity()];
  assert.equal(pinCertOfId(a.id), pinCertOfId(a.id));
  assert.notEqual(pinCertOfId(a.id), pinCertOfId(b.id));
  // A PEM certificate, as Deno's TLS takes a CA certificate.
  assert.match(
    pinCertOfId(a.id),
    /^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\n$/,
  );
});

Deno.test("pinCertOfId() refuses text that is not a device ID, naming the problem", () => {
  assert.throws(() => pinCertOfId("short"), /Cannot pin device "short": an ID has 52/);
  assert.throws(() => pinCertOfId("A".repeat(52)), /only the digits a-z and 2-7/);
});
