// `deno task bench`: the transfer benchmarks of lanshare, each side by side with its reference
// in the same run: loopback (single source vs nginx+curl, small-file time to first byte, seeder
// memory) then network namespaces (4 capped seeders and a flash crowd vs aria2c BitTorrent).
// Prints markdown tables and writes them to bench/out/transfer_<date>.md.
import { parseArgs } from "node:util";
import { renderTable } from "./_lib.ts";
import { runLoopbackBench } from "./loopback_bench.ts";
import { runSwarmBench } from "./swarm_bench.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { reps: { type: "string", default: "3" }, only: { type: "string" } },
});
const reps = Number(values.reps);
if (!Number.isInteger(reps) || reps < 1) {
  console.error(`Cannot run: --reps must be a positive integer, got "${values.reps}"`);
  Deno.exit(2);
}
const only = values.only?.split(",") ?? ["loopback", "swarm"];
const out = (line: string) => console.error(line);
const started = new Date().toISOString();
const tables = [];
if (only.includes("loopback")) tables.push(...await runLoopbackBench({ reps, out }));
if (only.includes("swarm")) tables.push(...await runSwarmBench({ reps, out }));
const report = [
  `## Transfer benchmarks, ${started}`,
  "",
  `Command: \`deno task bench --reps ${reps}${values.only ? ` --only ${values.only}` : ""}\``,
  "",
  ...tables.map(renderTable).flatMap((t) => [t, ""]),
].join("\n");
console.log(report);
await Deno.mkdir(new URL("./out/", import.meta.url), { recursive: true });
await Deno.writeTextFile(
  new URL(`./out/transfer_${started.replaceAll(":", "-")}.md`, import.meta.url),
  report,
);
