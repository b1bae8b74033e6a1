// EventHub: fan-out to every reader, and a client that stops reading is dropped at its bound.
import assert from "node:assert/strict";
import { EventHub } from "../../shared/http/event_hub.ts";

Deno.test("EventHub sends each event to every connected client", async () => {
  const hub = new EventHub();
  const a = hub.connect().pipeThrough(new TextDecoderStream()).getReader();
  const b = hub.connect().pipeThrough(new TextDecoderStream()).getReader();
  assert.equal(hub.size, 2);
  hub.publish("published", { fname: "x" });
  for (const reader of [a, b]) {
    let text = "";
    while (!text.includes("event: published")) text += (await reader.read()).value;
    assert.match(text, /data: \{"fname":"x"\}\n\n/);
  }
  await a.cancel();
  assert.equal(hub.size, 1);
  hub.close();
  await b.cancel();
});

Deno.test("EventHub drops a client that stops reading, and keeps no more than its bound", async () => {
  const hub = new EventHub({ maxQueuedBytes: 4096 });
  const stalled = hub.connect(); // never read
  const reader = hub.connect().getReader();
  const payload = { text: "y".repeat(100) };
  let published = 0;
  while (hub.dropped === 0 && published < 1000) {
    hub.publish("log", payload);
    published++;
    // The reading client keeps up.
    await reader.read();
  }
  assert.equal(hub.dropped, 1, "the stalled client was dropped");
  assert.ok(published < 50, `dropped after ${published} events (about 4 KiB)`);
  assert.equal(hub.size, 1, "the reading client stays");
  await assert.rejects(stalled.getReader().read(), /stopped reading/);
  hub.close();
  await reader.cancel();
});
