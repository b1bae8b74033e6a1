// A bare TLS 1.3 stream on loopback, no lanshare code: how many bytes one read returns and what a
// GiB costs in CPU, for Deno's own TLS (`Deno.listenTls` / `Deno.startTls`) against node:tls
// (Deno's Node compatibility layer) and plain TCP. Issue 11's question: is either TLS cheaper?
// The sender writes 1 MiB blocks from memory; the receiver reads into 1 MiB. Not part of lanshare.
//
//   deno run -A bench/_bare_tls.ts [--mib 512] [--reps 3]
//   prints one JSON line per run and a summary per receiver
import { parseArgs } from "node:util";
import * as nodeTls from "node:tls";
import { median } from "./_lib.ts";

/** Size of every write and of the receiver's buffer, bytes. */
const BLOCK_BYTES = 1 << 20;

/** This process's user + system CPU time, s (all threads; CLK_TCK = 100 on Linux x86-64). */
function cpuSeconds(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** A self-signed P-256 certificate for "localhost", made with openssl in a temporary folder. */
async function makeCertificate(): Promise<{ cert: string; key: string }> {
  const dir = await Deno.makeTempDir({ prefix: "bare-tls-" });
  try {
    const out = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        `${dir}/key.pem`,
        "-out",
        `${dir}/cert.pem`,
        "-days",
        "1",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost",
        // rustls refuses a CA certificate as the server's own
        "-addext",
        "basicConstraints=critical,CA:FALSE",
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(`Cannot make a certificate: ${new TextDecoder().decode(out.stderr)}`);
    }
    return {
      cert: await Deno.readTextFile(`${dir}/cert.pem`),
      key: await Deno.readTextFile(`${dir}/key.pem`),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Serves `bytes` to the first connection, then exits; prints its port, then its CPU s. */
async function send(bytes: number, plain: boolean, cert: string, key: string) {
  const listener = plain
    ? Deno.listen({ hostname: "127.0.0.1", port: 0 })
    : Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert, key });
  console.log(`listening ${listener.addr.port}`);
  const conn = await listener.accept();
  const cpu0 = cpuSeconds();
  const block = new Uint8Array(BLOCK_BYTES);
  for (let o = 0; o < block.length; o += 65536) {
    crypto.getRandomValues(block.subarray(o, o + 65536));
  }
  let sent = 0;
  let writes = 0;
  while (sent < bytes) {
    sent += await conn.write(block.subarray(0, Math.min(block.length, bytes - sent)));
    writes++;
  }
  conn.close();
  listener.close();
  console.log(JSON.stringify({ senderCpuSeconds: cpuSeconds() - cpu0, writes }));
}

/** Receives until the end of stream; prints rate, reads, bytes per read and CPU s. */
async function receive(port: number, impl: string, cert: string) {
  const cpu0 = cpuSeconds();
  const started = performance.now();
  let bytes = 0;
  let reads = 0;
  if (impl === "node:tls") {
    await new Promise<void>((resolve, reject) => {
      const socket = nodeTls.connect({
        host: "127.0.0.1",
        port,
        ca: [cert],
        servername: "localhost",
      });
      socket.on("data", (chunk: Uint8Array) => {
        bytes += chunk.length;
        reads++;
      });
      socket.on("end", () => {
        socket.destroy();
        resolve();
      });
      socket.on("error", reject);
    });
  } else {
    const tcp = await Deno.connect({ hostname: "127.0.0.1", port });
    const conn = impl === "plain"
      ? tcp
      : await Deno.startTls(tcp, { hostname: "localhost", caCerts: [cert] });
    const buffer = new Uint8Array(BLOCK_BYTES);
    for (;;) {
      let n: number | null;
      try {
        n = await conn.read(buffer);
      } catch (err) {
        if (!(err instanceof Deno.errors.UnexpectedEof)) throw err;
        n = null; // the sender closed without close_notify
      }
      if (n === null) break;
      bytes += n;
      reads++;
    }
    conn.close();
  }
  const ms = performance.now() - started;
  console.log(JSON.stringify({ bytes, reads, ms, receiverCpuSeconds: cpuSeconds() - cpu0 }));
}

/** Runs one sender and one receiver process; returns both lines merged. */
async function runOnce(
  impl: string,
  mib: number,
  certDir: string,
): Promise<Record<string, number>> {
  const self = new URL(import.meta.url).pathname;
  const role = (args: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", self, ...args, "--certs", certDir],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
  const sender = role([
    "--role",
    "send",
    "--mib",
    String(mib),
    ...(impl === "plain" ? ["--plain"] : []),
  ]);
  const reader = sender.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let head = "";
  while (!head.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("Cannot start the sender");
    head += value;
  }
  const port = head.match(/listening (\d+)/)?.[1];
  if (port === undefined) throw new Error(`Cannot start the sender: ${head}`);
  const receiver = await role(["--role", "receive", "--impl", impl, "--port", port]).output();
  let tail = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    tail += value;
  }
  await sender.status;
  const received = JSON.parse(new TextDecoder().decode(receiver.stdout).trim());
  const sent = JSON.parse(tail.trim().split("\n").at(-1)!);
  return { ...received, ...sent };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      role: { type: "string" },
      impl: { type: "string", default: "deno" },
      port: { type: "string" },
      mib: { type: "string", default: "512" },
      reps: { type: "string", default: "3" },
      plain: { type: "boolean", default: false },
      certs: { type: "string" },
    },
  });
  if (values.role) {
    const cert = await Deno.readTextFile(`${values.certs}/cert.pem`);
    const key = await Deno.readTextFile(`${values.certs}/key.pem`);
    const port = Number(values.port);
    if (values.role === "send") {
      await send(Number(values.mib) * BLOCK_BYTES, values.plain, cert, key);
    } else await receive(port, values.impl, cert);
  } else {
    const certDir = await Deno.makeTempDir({ prefix: "bare-tls-certs-" });
    try {
      const { cert, key } = await makeCertificate();
      await Deno.writeTextFile(`${certDir}/cert.pem`, cert);
      await Deno.writeTextFile(`${certDir}/key.pem`, key);
      const mib = Number(values.mib);
      const results = new Map<string, Record<string, number>[]>();
      for (let rep = 1; rep <= Number(values.reps); rep++) {
        for (const impl of ["deno", "node:tls", "plain"]) {
          const r = await runOnce(impl, mib, certDir);
          console.log(JSON.stringify({ rep, impl, ...r }));
          results.set(impl, [...results.get(impl) ?? [], r]);
        }
      }
      const gib = mib / 1024;
      for (const [impl, runs] of results) {
        const m = (f: (r: Record<string, number>) => number) => median(runs.map(f)).toFixed(2);
        console.log(
          `${impl}: ${m((r) => mib / (r.ms! / 1000))} MiB/s, ${
            m((r) => r.bytes! / r.reads!)
          } B/read, ` +
            `CPU s/GiB receiver ${m((r) => r.receiverCpuSeconds! / gib)}, ` +
            `sender ${m((r) => r.senderCpuSeconds! / gib)} (median of ${runs.length})`,
        );
      }
    } finally {
      await Deno.remove(certDir, { recursive: true });
    }
  }
}
