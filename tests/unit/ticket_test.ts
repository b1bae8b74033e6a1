import assert from "node:assert/strict";
import { createIdentity } from "../../shared/identity.ts";
import { issueTicket, TICKET_LIFETIME_MS, ticketProblem } from "../../shared/ticket.ts";

const NOW = 1_767_225_600_000;
const [index, fetcher, other] = await Promise.all([
  createIdentity(),
  createIdentity(),
  createIdentity(),
]);
const check = { fetcherId: fetcher.id, trustedIndexIds: [index.id], nowMs: NOW };

Deno.test("ticketProblem() accepts a fresh ticket of a trusted index for the proven fetcher", async () => {
  const ticket = await issueTicket(index, fetcher.id, NOW);
  assert.equal(ticket.expiresAtMs, NOW + TICKET_LIFETIME_MS);
  assert.equal(await ticketProblem(ticket, check), undefined);
  // Within the clock skew after expiry: still accepted.
  assert.equal(
    await ticketProblem(ticket, { ...check, nowMs: ticket.expiresAtMs + 59_000 }),
    undefined,
  );
});

Deno.test("ticketProblem() refuses an expired ticket", async () => {
  const ticket = await issueTicket(index, fetcher.id, NOW - TICKET_LIFETIME_MS - 61_000);
  assert.match(await ticketProblem(ticket, check) ?? "", /^the ticket expired at /);
});

Deno.test("ticketProblem() refuses a forged or altered ticket", async () => {
  const ticket = await issueTicket(index, fetcher.id, NOW);
  // Signed by another device claiming to be the index.
  const forged = { ...await issueTicket(other, fetcher.id, NOW), index: index.id };
  assert.match(await ticketProblem(forged, check) ?? "", /not signed by index/);
  // A longer life than the index gave.
  const extended = { ...ticket, expiresAtMs: ticket.expiresAtMs + 3_600_000 };
  assert.match(await ticketProblem(extended, check) ?? "", /not signed by index/);
  // Someone else's ticket, presented by the fetcher.
  const stolen = await issueTicket(index, other.id, NOW);
  assert.match(await ticketProblem(stolen, check) ?? "", /^the ticket is device .*'s, not/);
  // A ticket of an index this source does not use.
  const foreign = await issueTicket(other, fetcher.id, NOW);
  assert.match(await ticketProblem(foreign, check) ?? "", /not the index this peer uses/);
  assert.match(
    await ticketProblem({ ...ticket, sig: "@@@@" }, check) ?? "",
    /signature is not base64/,
  );
});
