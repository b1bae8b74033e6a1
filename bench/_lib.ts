// Benchmark helpers: result tables, statistics and formatting. Pure except machineInfo(),
// which runs a few read-only commands (nproc, free, uname) to describe the machine.

/** One result table of a benchmark, rendered as markdown by renderTable(). */
export interface BenchTable {
  /** Heading, e.g. "Single source, 1 GiB on loopback". */
  title: string;
  /** Column headers. */
  columns: string[];
  /** Cells, one array per row, as many cells as columns. */
  rows: string[][];
  /** Lines printed under the table: method, caveats, what the numbers mean. */
  notes: string[];
}

/** Renders a table as GitHub markdown: heading, table, then notes as a bullet list. */
export function renderTable(table: BenchTable): string {
  const escape = (cell: string) => cell.replaceAll("|", "\\|");
  const lines = [`### ${table.title}`, ""];
  lines.push(`| ${table.columns.map(escape).join(" | ")} |`);
  lines.push(`|${table.columns.map(() => "---").join("|")}|`);
  for (const row of table.rows) lines.push(`| ${row.map(escape).join(" | ")} |`);
  if (table.notes.length > 0) lines.push("", ...table.notes.map((n) => `- ${n}`));
  return lines.join("\n");
}

/** Value at quantile `q` (0..1) of `values`, nearest-rank; NaN for an empty list. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1]!;
}

/** Median: the mean of the two middle values for an even count; NaN for an empty list. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Formats a number with `digits` decimals, or "n/a" when it is not finite. */
export function num(value: number, digits = 0): string {
  return Number.isFinite(value) ? value.toFixed(digits) : "n/a";
}

/** "median (min–max)" of `values`, or just the value when there is one. */
export function summary(values: readonly number[], digits = 0): string {
  if (values.length === 0) return "n/a";
  if (values.length === 1) return num(values[0]!, digits);
  return `${num(median(values), digits)} (${num(Math.min(...values), digits)}–${
    num(Math.max(...values), digits)
  })`;
}

/** Ratio of the medians of `a` and `b`, as "1.23×". */
export function ratio(a: readonly number[], b: readonly number[]): string {
  return `${num(median(a) / median(b), 2)}×`;
}

/** Bytes per second in MiB/s. */
export function mibPerSecond(bytes: number, ms: number): number {
  return bytes / 1048576 / (ms / 1000);
}

/** A short description of the machine and tools, one fact per line. */
export async function machineInfo(): Promise<string[]> {
  const run = async (cmd: string, args: string[]) => {
    try {
      const { stdout, stderr } = await new Deno.Command(cmd, {
        args,
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(5000),
      }).output();
      const text = new TextDecoder().decode(stdout).trim() ||
        new TextDecoder().decode(stderr).trim();
      return text;
    } catch (err) {
      return `unavailable (${err instanceof Error ? err.message : String(err)})`;
    }
  };
  const free = (await run("free", ["-m"])).split("\n").find((l) => l.startsWith("Mem:")) ?? "";
  const [, total, used, freeMib, , cache, available] = free.trim().split(/\s+/);
  const load = await Deno.readTextFile("/proc/loadavg").catch(() => "unavailable");
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? "unknown";
  const sha = /^flags\s*:.*\bsha_ni\b/m.test(cpuinfo) ? ", SHA extensions" : "";
  return [
    `date: ${new Date().toISOString()}`,
    `cpu: ${model}${sha}`,
    `nproc: ${await run("nproc", [])}; load average at start: ${
      load.split(" ").slice(0, 3).join(" ")
    }`,
    `memory (free -m): total ${total} MiB, used ${used}, free ${freeMib}, buff/cache ${cache}, available ${available}`,
    `kernel: ${await run("uname", ["-sr"])}`,
    `deno: ${Deno.version.deno} (V8 ${Deno.version.v8})`,
    `nginx: ${(await run("nginx", ["-v"])).replace(/^nginx version: /, "")}; curl: ${
      (await run("curl", ["--version"])).split("\n")[0]?.split(" ").slice(0, 2).join(" ")
    }`,
  ];
}
