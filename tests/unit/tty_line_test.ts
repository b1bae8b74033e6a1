import assert from "node:assert/strict";
import { TtyLine } from "../../peer/tty_line.ts";

Deno.test("TtyLine.around() clears the live line before a log record and redraws it after", () => {
  const screen: string[] = [];
  const line = new TtyLine((text) => screen.push(text));
  line.around(() => screen.push("log 1\n"));
  assert.deepEqual(screen, ["log 1\n"], "nothing to clear or redraw yet");
  line.show("big.iso 40.0% 40.0 MiB/100 MiB");
  line.around(() => screen.push("log 2\n"));
  assert.deepEqual(screen.slice(1), [
    "\r\x1b[Kbig.iso 40.0% 40.0 MiB/100 MiB",
    "\r\x1b[K",
    "log 2\n",
    "\r\x1b[Kbig.iso 40.0% 40.0 MiB/100 MiB",
  ]);
  line.clear();
  line.around(() => screen.push("log 3\n"));
  assert.deepEqual(screen.slice(5), ["\r\x1b[K", "log 3\n"], "a cleared line stays cleared");
});
