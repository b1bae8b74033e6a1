// The ceiling row of the loopback bench: the plainest Deno TCP file copy, with no framing, no
// hashing and no fsync. `send` serves one file to every connection; `receive` writes what it
// gets to a file. Both use 1 MiB buffers, synchronous file I/O and async socket I/O, the
// fastest combination measured on Deno here (../shared/FACTS.md). Not part of lanshare.
//
//   deno run -A bench/_bare_copy.ts send FILE          prints {"event":"listening","port":N}
//   deno run -A bench/_bare_copy.ts receive PORT OUT   prints {"bytes":N,"ms":T,"cpuSeconds":C}

/** Size of every read and write, bytes. */
const BLOCK_BYTES = 1 << 20;

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}

function writeAllSync(file: Deno.FsFile, bytes: Uint8Array): void {
  let offset = 0;
  while (offset < bytes.length) offset += file.writeSync(bytes.subarray(offset));
}

/** This process's user + system CPU time, s (all threads; CLK_TCK = 100 on Linux x86-64). */
function cpuSeconds(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Streams `path` to one connection, then closes it. */
async function sendFile(conn: Deno.Conn, path: string): Promise<void> {
  using file = await Deno.open(path, { read: true });
  const buffer = new Uint8Array(BLOCK_BYTES);
  try {
    for (;;) {
      const n = file.readSync(buffer);
      if (n === null) break;
      await writeAll(conn, buffer.subarray(0, n));
    }
  } finally {
    conn.close();
  }
}

async function send(path: string): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  console.log(JSON.stringify({ event: "listening", port: listener.addr.port }));
  for await (const conn of listener) {
    sendFile(conn, path).catch((err) => console.error(`Cannot send ${path}: ${err}`));
  }
}

async function receive(port: number, outPath: string): Promise<void> {
  const cpu0 = cpuSeconds();
  const started = performance.now();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  using file = await Deno.open(outPath, { write: true, create: true, truncate: true });
  const buffer = new Uint8Array(BLOCK_BYTES);
  let bytes = 0;
  for (;;) {
    const n = await conn.read(buffer);
    if (n === null) break;
    writeAllSync(file, buffer.subarray(0, n));
    bytes += n;
  }
  conn.close();
  const ms = performance.now() - started;
  console.log(JSON.stringify({ bytes, ms, cpuSeconds: cpuSeconds() - cpu0 }));
}

if (import.meta.main) {
  const [role, a, b] = Deno.args;
  if (role === "send" && a) await send(a);
  else if (role === "receive" && a && b) await receive(Number(a), b);
  else {
    console.error("usage: _bare_copy.ts send FILE | receive PORT OUT");
    Deno.exit(2);
  }
}
