// What every attack family exports, and the small helpers they share for judging outcomes.
import type { Lab } from "./_lab.ts";

/** How hard to push. */
export interface Scale {
  /** A small run for development (`--quick`): fewer connections, shorter budgets. */
  quick: boolean;
  /** Seed of every random choice (fuzzer cases), printed so a failure can be replayed. */
  seed: number;
}

/** The verdict of one attack. */
export interface Outcome {
  pass: boolean;
  /** The figures behind the verdict, on one line: crashes, hangs, ghosts, RSS, counts. */
  figures: string;
}

/** One attack family. */
export interface Attack {
  /** Short name used by `--only`. */
  name: string;
  /** What it does, one line. */
  summary: string;
  /** Wall-clock bound of the whole attack in ms; the driver fails and cleans up after it. */
  budgetMs(scale: Scale): number;
  /** Runs the attack against processes it starts in `lab`. */
  run(lab: Lab, scale: Scale): Promise<Outcome>;
}

/** Collects pass/fail conditions with their figures. */
export class Verdict {
  readonly #figures: string[] = [];
  #failed = false;

  /** Records a figure that is only information. */
  note(figure: string): this {
    this.#figures.push(figure);
    return this;
  }

  /** Records a figure that must hold; a failing one is marked with "✗". */
  require(holds: boolean, figure: string): this {
    this.#figures.push(holds ? figure : `✗ ${figure}`);
    if (!holds) this.#failed = true;
    return this;
  }

  /** The outcome: pass when every requirement held. */
  outcome(): Outcome {
    return { pass: !this.#failed, figures: this.#figures.join(", ") };
  }
}
