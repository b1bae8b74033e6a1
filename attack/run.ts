// The attack suite's driver (`deno task fuzz`): runs each attack family against the real server
// and peer processes on loopback, one at a time, and prints `PASS`/`FAIL <attack>: <figures>`
// per attack and a summary. Exit code 0 only when every attack passed.
import { parseArgs } from "node:util";
import type { Attack, Outcome, Scale } from "./_attack.ts";
import { disposeAllLabs, Lab } from "./_lab.ts";
import { errorText, withinMs } from "./_wire.ts";
import { fuzz } from "./fuzz.ts";
import { ghostSessions } from "./ghost_sessions.ts";
import { memoryBeforeHello } from "./memory_before_hello.ts";
import { outsideRead } from "./outside_read.ts";
import { oversizedReply } from "./oversized_reply.ts";
import { searchFreeze } from "./search_freeze.ts";
import { sessionLimits } from "./session_limits.ts";
import { slotStarvation } from "./slot_starvation.ts";
import { swarmDeadlock } from "./swarm_deadlock.ts";

/** Every attack, in the order they run. */
export const ATTACKS: readonly Attack[] = [
  oversizedReply,
  searchFreeze,
  ghostSessions,
  outsideRead,
  slotStarvation,
  swarmDeadlock,
  memoryBeforeHello,
  sessionLimits,
  fuzz,
];

const USAGE = `usage: deno task fuzz [--quick] [--only NAME[,NAME...]] [--seed N] [--list]

  --quick   a small run for development (fewer connections, shorter budgets)
  --only    run only these attacks (see --list)
  --seed    seed of the fuzzer's random cases (default: random, printed)
  --list    print the attacks and exit`;

/** Runs the selected attacks; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args,
      options: {
        quick: { type: "boolean", default: false },
        only: { type: "string" },
        seed: { type: "string" },
        list: { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
    }).values;
  } catch (err) {
    console.error(`Cannot parse arguments: ${errorText(err)}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.list) {
    for (const attack of ATTACKS) console.log(`${attack.name.padEnd(20)} ${attack.summary}`);
    return 0;
  }
  const names = values.only?.split(",").map((n) => n.trim()).filter((n) => n !== "");
  const unknown = names?.filter((n) => !ATTACKS.some((a) => a.name === n)) ?? [];
  if (unknown.length > 0) {
    console.error(`Cannot run "${unknown.join('", "')}": no such attack (see --list)`);
    return 2;
  }
  const seed = values.seed === undefined ? crypto.getRandomValues(new Uint32Array(1))[0]! : Number(
    values.seed,
  );
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    console.error(`Cannot use seed "${values.seed}": not a u32`);
    return 2;
  }
  const scale: Scale = { quick: values.quick, seed };
  const selected = ATTACKS.filter((a) => names === undefined || names.includes(a.name));

  // A signal kills what the running attack started at once; the loop then stops, and the
  // process exits only after every Lab has removed its folder.
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) return;
    interrupted = true;
    console.error("attack suite: interrupted, cleaning up");
    void disposeAllLabs();
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);

  const suiteStarted = performance.now();
  const failed: string[] = [];
  console.log(
    `attack suite: ${selected.length} attack(s), seed ${seed}${scale.quick ? ", quick" : ""}`,
  );
  for (const attack of selected) {
    if (interrupted) break;
    const started = performance.now();
    console.error(`running ${attack.name}: ${attack.summary}`);
    const outcome = await runOne(attack, scale);
    if (interrupted) break;
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(
      `${outcome.pass ? "PASS" : "FAIL"} ${attack.name}: ${outcome.figures} (${seconds} s)`,
    );
    if (!outcome.pass) failed.push(attack.name);
  }
  if (interrupted) {
    await disposeAllLabs();
    console.log(`attack suite: interrupted after ${failed.length} failure(s)`);
    return 130;
  }
  const total = ((performance.now() - suiteStarted) / 1000).toFixed(1);
  const passed = selected.length - failed.length;
  console.log(
    `attack suite: ${passed} passed, ${failed.length} failed${
      failed.length > 0 ? ` (${failed.join(", ")})` : ""
    } in ${total} s, seed ${seed}`,
  );
  return failed.length === 0 ? 0 : 1;
}

/** Runs one attack in its own Lab within its budget; a throw or an overrun is a failure. */
async function runOne(attack: Attack, scale: Scale): Promise<Outcome> {
  const budgetMs = attack.budgetMs(scale);
  const lab = await Lab.open(attack.name);
  try {
    const running = attack.run(lab, scale).catch((err): Outcome => ({
      pass: false,
      figures: `attack failed: ${errorText(err)}`,
    }));
    return await withinMs(running, budgetMs) ?? {
      pass: false,
      figures: `did not finish within its budget of ${budgetMs / 1000} s (hang)`,
    };
  } finally {
    await lab[Symbol.asyncDispose]();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
