import assert from "node:assert/strict";
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

Deno.test("idOfCert() refuses text that is not a certificate", () => {
  assert.throws(() => idOfCert("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"));
});
