// Glob matching without backtracking regular expressions: `*` any run of characters, `?` one
// character, everything else literal, anchored at both ends. Pure: no I/O.
//
// The classic two-pointer algorithm: on a mismatch it returns to the last `*` and lets that star
// take one more character. Only the last star is ever revisited (a match found for an earlier
// star is never worse than a later one), so a name of n code units and a pattern of m take at
// most (n + 1) · (m + 1) steps, whatever the pattern. A regular expression built from the glob
// (`^.*.?.*.?…$`) backtracks over every way to split the name between its stars instead:
// `*?*?*?*?*?*?*?*#` took over 70 s against an 84-character name.

/** A compiled glob; counts its work so that callers can pause and tests can bound it. */
export class Glob {
  readonly #pattern: string;
  /** Steps taken by every `matches()` call so far (one per character comparison or retry). */
  steps = 0;

  /** @param pattern the glob, compared code unit by code unit (fold case beforehand if wanted) */
  constructor(pattern: string) {
    // Consecutive stars mean the same as one; fewer stars, fewer retries.
    this.#pattern = pattern.replace(/\*{2,}/g, "*");
  }

  /** Whether the whole of `name` matches the pattern. */
  matches(name: string): boolean {
    const pattern = this.#pattern;
    let steps = 0;
    let p = 0;
    let n = 0;
    /** Position of the last `*` met, or -1. */
    let starAt = -1;
    /** Where the text that star covers ends so far. */
    let starEnd = 0;
    let matched = false;
    for (;;) {
      steps++;
      if (n >= name.length) {
        while (p < pattern.length && pattern.charCodeAt(p) === STAR) p++;
        matched = p === pattern.length;
        break;
      }
      const want = p < pattern.length ? pattern.charCodeAt(p) : -1;
      if (want === QUESTION) {
        p++;
        n += characterUnits(name, n);
      } else if (want === STAR) {
        starAt = p++;
        starEnd = n;
      } else if (want === name.charCodeAt(n)) {
        p++;
        n++;
      } else if (starAt >= 0) {
        // The last star takes one more character (a whole one: never half a surrogate pair).
        starEnd += characterUnits(name, starEnd);
        p = starAt + 1;
        n = starEnd;
      } else break;
    }
    this.steps += steps;
    return matched;
  }
}

const STAR = 0x2a;
const QUESTION = 0x3f;

/** Code units of the character at `at`: 2 for a surrogate pair, else 1. */
function characterUnits(text: string, at: number): number {
  const unit = text.charCodeAt(at);
  if (unit < 0xd800 || unit > 0xdbff || at + 1 >= text.length) return 1;
  const next = text.charCodeAt(at + 1);
  return next >= 0xdc00 && next <= 0xdfff ? 2 : 1;
}
