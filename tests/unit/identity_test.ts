import "reflect-metadata";
import assert from "node:assert/strict";
import * as x509 from "@peculiar/x509";
import {
  createIdentity,
  ID_LENGTH,
  identityFromKeyPem,
  idOfCert,
  idProblem,
  shortId,
  sign,
  verify,
} from "../../shared/identity.ts";

const bytes = new TextEncoder().encode("lanshare");

Deno.test("createIdentity() makes a 52-digit ID that its certificate names", async () => {
  const me = await createIdentity();
  assert.equal(me.id.length, ID_LENGTH);
  assert.equal(idProblem(me.id), undefined);
  assert.equal(idOfCert(me.certPem), me.id);
  assert.match(shortId(me.id), /^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$/);
});

Deno.test("identityFromKeyPem() rebuilds the same ID and the same certificate bytes", async () => {
  const me = await createIdentity();
  const again = await identityFromKeyPem(me.keyPem);
  assert.equal(again.id, me.id);
  assert.equal(again.certPem, me.certPem);
  await assert.rejects(() => identityFromKeyPem("not a key"), TypeError);
});

Deno.test("verify() accepts the device's own signatures only", async () => {
  const me = await createIdentity();
  const other = await createIdentity();
  const signature = await sign(me, bytes);
  assert.equal(await verify(me.id, bytes, signature), true);
  assert.equal(await verify(other.id, bytes, signature), false);
  assert.equal(await verify(me.id, new TextEncoder().encode("lanshar3"), signature), false);
  assert.equal(await verify(me.id, bytes, signature.subarray(1)), false);
  assert.equal(await verify("not-an-id", bytes, signature), false);
});

Deno.test("sign() and verify() do not wait on WebCrypto", async () => {
  // Deno runs WebCrypto's Ed25519 on threads that closing thousands of dead TLS connections
  // held for seconds (measured: 200 signatures took 7 s after 5,000 such closes, 5 ms
  // inline), so an index restart stalled every Hello and ticket. A WebCrypto that never
  // answers stands for that here: signing and verifying must not notice.
  const me = await createIdentity();
  const subtle = crypto.subtle;
  const original = { sign: subtle.sign, verify: subtle.verify };
  const never = () => new Promise<never>(() => {});
  subtle.sign = never;
  subtle.verify = never;
  try {
    let signature: Uint8Array<ArrayBuffer> | undefined;
    let valid: boolean | undefined;
    void sign(me, bytes).then((s) => {
      signature = s;
      void verify(me.id, bytes, s).then((v) => valid = v);
    });
    for (let i = 0; i < 10 && valid === undefined; i++) await Promise.resolve();
    assert.equal(signature?.length, 64);
    assert.equal(valid, true);
  } finally {
    subtle.sign = original.sign;
    subtle.verify = original.verify;
  }
  // Signatures made through WebCrypto verify too: the same algorithm either way.
  const webSignature = new Uint8Array(await crypto.subtle.sign("Ed25519", me.privateKey, bytes));
  assert.equal(await verify(me.id, bytes, webSignature), true);
});

Deno.test("verify() says false, never throws, for 52 digits that decode to no key", async () => {
  const me = await createIdentity();
  const signature = await sign(me, bytes);
  // 52 base32 digits whose last one has bits beyond the 32 bytes: no key, so no signature.
  assert.equal(await verify("7".repeat(52), bytes, signature), false);
});

Deno.test("idOfCert() refuses text that is not a certificate", () => {
  assert.throws(() => idOfCert("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"));
});

Deno.test("idOfCert() refuses a certificate whose key is not Ed25519", async () => {
  const keys = await crypto.subtle.generateKey(
    { name: "ECDSA", namedCurve: "P-256" },
    true,
    ["sign", "verify"],
  );
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: "CN=p256",
    notBefore: new Date(Date.UTC(2000, 0, 1)),
    notAfter: new Date(Date.UTC(2100, 0, 1)),
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    keys,
  });
  assert.throws(() => idOfCert(cert.toString("pem")), /its key is not Ed25519/);
});
