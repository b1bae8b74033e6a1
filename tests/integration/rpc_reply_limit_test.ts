// RpcConn's defence in depth: a handler whose reply would break the frame limit fails that
// request with an Error reply; the connection, and the process, carry on.
import assert from "node:assert/strict";
import { FramedConn } from "../../shared/framing.ts";
import { DEFAULT_LIMITS, MsgType } from "../../shared/protocol.ts";
import { RpcConn } from "../../shared/rpc.ts";
import { connectRaw } from "./_server.ts";

Deno.test({
  name: "RpcConn answers a reply too large to encode with an internal Error and keeps serving",
  sanitizeResources: true,
  sanitizeOps: true,
  async fn() {
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const serving = (async () => {
      const conn = await listener.accept();
      const rpc = new RpcConn(new FramedConn(conn), (message) => {
        if (message.type !== MsgType.Search) return undefined;
        // A reply no frame can carry: what a handler forgetting the limit would build.
        const reason = "x".repeat(DEFAULT_LIMITS.maxBodyBytes + 1);
        if (message.body.pattern === "huge") return { type: MsgType.Goodbye, body: { reason } };
        return { type: MsgType.SearchResult, body: { entries: [], total: 0 } };
      }, { label: "test", concurrent: true });
      try {
        await rpc.run();
      } finally {
        rpc.close();
      }
    })();
    await using client = await connectRaw(listener.addr.port);
    const page = { offset: 0, limit: 10 };
    const failed = await client.request(MsgType.Search, { pattern: "huge", ...page });
    assert.equal(failed.type, MsgType.Error);
    if (failed.type !== MsgType.Error) return;
    assert.equal(failed.body.code, "internal");
    assert.match(failed.body.message, /^Cannot handle request: Cannot encode Goodbye: body is/);
    const fine = await client.request(MsgType.Search, { pattern: "small", ...page });
    assert.equal(fine.type, MsgType.SearchResult);
    await client.close();
    await serving;
  },
});
