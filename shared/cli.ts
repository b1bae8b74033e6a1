// Command-line helpers shared by both programs: option resolution (flags > env > defaults),
// address parsing, default broadcast addresses and the shell's line tokenizer.
import { parseArgs } from "node:util";
import { ConfigError } from "./errors.ts";

/** How one option is parsed. */
export type OptionKind = "string" | "port" | "uint" | "list" | "boolean";

/** One command-line option with its environment variable and default. */
export interface OptionSpec {
  /** kebab-case flag name without dashes. */
  flag: string;
  /** Environment variable consulted when the flag is absent. */
  env?: string;
  kind: OptionKind;
  /** Value when neither flag nor env is given. */
  default: string | number | boolean | string[] | undefined;
  /** One line for --help. */
  help: string;
}

/** Resolved values by flag name. */
export type OptionValues = Record<string, string | number | boolean | string[] | undefined>;

/**
 * Parses `args` and `env` against `specs`. Precedence: flag, then env, then default.
 * Returns the values and every problem found, so the caller can add its own checks and report
 * them all in one ConfigError.
 *
 * @throws {ConfigError} for an unknown flag or a flag without its value
 */
export function resolveOptions(
  specs: readonly OptionSpec[],
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): { values: OptionValues; problems: string[] } {
  const options: Record<string, { type: "string" | "boolean" }> = {
    help: { type: "boolean" },
    version: { type: "boolean" },
  };
  for (const spec of specs) {
    options[spec.flag] = { type: spec.kind === "boolean" ? "boolean" : "string" };
  }
  let parsed;
  try {
    parsed = parseArgs({ args: [...args], options, strict: true, allowPositionals: false });
  } catch (err) {
    throw new ConfigError([err instanceof Error ? err.message : String(err)]);
  }
  const problems: string[] = [];
  const values: OptionValues = { help: parsed.values.help, version: parsed.values.version };
  for (const spec of specs) {
    const fromFlag = parsed.values[spec.flag];
    const fromEnv = spec.env === undefined ? undefined : env[spec.env];
    const raw = fromFlag ?? fromEnv;
    const source = fromFlag !== undefined ? `--${spec.flag}` : spec.env;
    if (raw === undefined) {
      values[spec.flag] = spec.default;
      continue;
    }
    if (typeof raw === "boolean") {
      values[spec.flag] = raw;
      continue;
    }
    switch (spec.kind) {
      case "boolean":
        if (!/^(1|0|true|false)$/.test(raw)) problems.push(`${source} must be true or false`);
        values[spec.flag] = raw === "1" || raw === "true";
        break;
      case "port":
      case "uint": {
        const max = spec.kind === "port" ? 65535 : Number.MAX_SAFE_INTEGER;
        const n = Number(raw);
        if (!/^\d+$/.test(raw) || n > max) {
          problems.push(`${source} must be an integer from 0 to ${max}, got "${raw}"`);
        }
        values[spec.flag] = n;
        break;
      }
      case "list":
        values[spec.flag] = raw.split(",").map((s) => s.trim()).filter((s) => s !== "");
        break;
      case "string":
        if (raw === "") problems.push(`${source} must not be empty`);
        values[spec.flag] = raw;
        break;
    }
  }
  return { values, problems };
}

/**
 * Reads the environment variables named by `specs` (the only ones the programs may read; run
 * with `--allow-env=LANSHARE_*`). A variable that may not be read counts as absent.
 */
export function readOptionEnv(specs: readonly OptionSpec[]): Record<string, string | undefined> {
  return readEnv(specs.flatMap((spec) => spec.env === undefined ? [] : [spec.env]));
}

/** Reads the named environment variables; one that may not be read counts as absent. */
export function readEnv(names: readonly string[]): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const name of names) {
    try {
      env[name] = Deno.env.get(name);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotCapable)) throw err;
    }
  }
  return env;
}

/** Formats the option table for --help. */
export function usage(command: string, summary: string, specs: readonly OptionSpec[]): string {
  const lines = [`Usage: ${command} [options]`, "", summary, "", "Options:"];
  for (const spec of specs) {
    const def =
      spec.default === undefined || (Array.isArray(spec.default) && spec.default.length === 0)
        ? ""
        : ` (default: ${Array.isArray(spec.default) ? spec.default.join(",") : spec.default})`;
    const env = spec.env ? ` [env ${spec.env}]` : "";
    lines.push(`  --${spec.flag.padEnd(22)} ${spec.help}${def}${env}`);
  }
  lines.push(
    `  --${"help".padEnd(22)} show this text`,
    `  --${"version".padEnd(22)} show the version`,
  );
  return lines.join("\n");
}

/** A host and port. */
export interface HostPort {
  hostname: string;
  port: number;
}

/**
 * Parses "host:port" (IPv6 as "[::1]:port").
 *
 * @throws {RangeError} with a message naming the bad value
 */
export function parseHostPort(text: string): HostPort {
  const match = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  const port = Number(match?.[2]);
  if (!match || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RangeError(`"${text}" is not HOST:PORT with a port from 1 to 65535`);
  }
  return { hostname: match[1]!, port };
}

/** Checks a dotted-quad IPv4 address. */
export function isIpv4(text: string): boolean {
  const parts = text.split(".");
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
}

/**
 * The default broadcast targets: 255.255.255.255 plus each IPv4 interface's directed broadcast
 * address (address | ~netmask).
 */
export function defaultBroadcastAddresses(
  interfaces: readonly Pick<Deno.NetworkInterfaceInfo, "family" | "address" | "netmask">[],
): string[] {
  const addresses = new Set(["255.255.255.255"]);
  for (const iface of interfaces) {
    if (iface.family !== "IPv4" || !isIpv4(iface.netmask)) continue;
    const addr = iface.address.split(".").map(Number);
    const mask = iface.netmask.split(".").map(Number);
    addresses.add(addr.map((a, i) => (a | (~mask[i]! & 0xff)) & 0xff).join("."));
  }
  return [...addresses];
}

/**
 * Splits a shell line into words the way a POSIX shell does for quoting: whitespace separates
 * words; "double" and 'single' quotes group; a backslash escapes the next character outside
 * single quotes.
 *
 * @throws {SyntaxError} on an unterminated quote or a trailing backslash
 */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else word += c;
    } else if (c === "\\") {
      if (i + 1 >= line.length) throw new SyntaxError("Cannot parse line: trailing backslash");
      word += line[++i];
      inWord = true;
    } else if (quote === '"') {
      if (c === '"') quote = undefined;
      else word += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) throw new SyntaxError(`Cannot parse line: unterminated ${quote} quote`);
  if (inWord) words.push(word);
  return words;
}

/** Yields the lines of a byte stream (e.g. stdin), without line endings. */
export async function* readLines(readable: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let pending = "";
  for await (const text of readable.pipeThrough(new TextDecoderStream())) {
    pending += text;
    let newline: number;
    while ((newline = pending.indexOf("\n")) >= 0) {
      yield pending.slice(0, newline).replace(/\r$/, "");
      pending = pending.slice(newline + 1);
    }
  }
  if (pending !== "") yield pending;
}

/** What a command line asks for: a config to run, or the help or version text. */
export type CommandLine<C> = { kind: "run"; config: C } | { kind: "help"; text: string } | {
  kind: "version";
};

/**
 * The parse step of a program's main: prints help, the version or the config problems, and
 * returns the exit code then (0, or 2 for bad flags), else the config to run.
 */
export function configOrExitCode<C>(
  program: string,
  version: string,
  parse: () => CommandLine<C>,
): { config: C } | { exitCode: number } {
  let parsed: CommandLine<C>;
  try {
    parsed = parse();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(err.message);
    return { exitCode: 2 };
  }
  if (parsed.kind === "help") console.log(parsed.text);
  if (parsed.kind === "version") console.log(`${program} ${version}`);
  return parsed.kind === "run" ? { config: parsed.config } : { exitCode: 0 };
}
