// The catalogue's distinct names kept in byte order as they come and go, so that the unfiltered
// catalogue page (the dashboard's first view) is a walk over one page's names instead of a
// sort of every name. Sorted blocks (a flat B-tree of one level): an insert or removal costs a
// binary search and a move of at most MAX_BLOCK references, with no rebuild. Pure: no I/O.

/** Names per block at most: a split halves a block past this. */
export const MAX_BLOCK = 1024;

/** What is kept: anything with a name. */
export interface Named {
  /** The key, unique among the items held. */
  readonly fname: string;
}

/** Items ordered by `compare` of their fnames (byte order in the catalogue). */
export class SortedNames<T extends Named> {
  readonly #compare: (a: string, b: string) => number;
  /** Non-empty blocks, each sorted, each block's items before the next block's. */
  #blocks: T[][] = [];
  #size = 0;

  /** @param compare the order of fnames (negative: a first) */
  constructor(compare: (a: string, b: string) => number) {
    this.#compare = compare;
  }

  /** Items held. */
  get size(): number {
    return this.#size;
  }

  /** Adds an item whose fname is not held yet. */
  add(item: T): void {
    const blocks = this.#blocks;
    if (blocks.length === 0) {
      blocks.push([item]);
      this.#size++;
      return;
    }
    const b = this.#blockFor(item.fname);
    const block = blocks[b]!;
    // Names often come in order (a peer's listing): append without a search.
    const last = block[block.length - 1]!;
    if (this.#compare(last.fname, item.fname) < 0) block.push(item);
    else block.splice(this.#firstAtOrAfter(block, item.fname), 0, item);
    this.#size++;
    if (block.length > MAX_BLOCK) blocks.splice(b + 1, 0, block.splice(block.length >> 1));
  }

  /** Removes the item of `fname`. @returns whether it was held */
  remove(fname: string): boolean {
    if (this.#blocks.length === 0) return false;
    const b = this.#blockFor(fname);
    const block = this.#blocks[b]!;
    const at = this.#firstAtOrAfter(block, fname);
    if (at >= block.length || block[at]!.fname !== fname) return false;
    block.splice(at, 1);
    this.#size--;
    if (block.length === 0) this.#blocks.splice(b, 1);
    return true;
  }

  /**
   * The items in order, from the first after `after` (from the start when undefined), a block
   * at a time: a caller may pause between two blocks. Each block is a copy, and the walk finds
   * its place again by name after each, so changes during a pause are seen from there on and
   * no item comes twice.
   */
  *blocksFrom(after?: string): Generator<readonly T[]> {
    let last = after;
    for (;;) {
      const blocks = this.#blocks;
      if (blocks.length === 0) return;
      let b = 0;
      let at = 0;
      if (last !== undefined) {
        b = this.#blockFor(last);
        at = this.#firstAfter(blocks[b]!, last);
        if (at >= blocks[b]!.length) {
          b++;
          at = 0;
        }
      }
      const block = blocks[b];
      if (block === undefined) return;
      const rest = block.slice(at);
      last = rest[rest.length - 1]!.fname;
      yield rest;
    }
  }

  /** Index of the block that holds `fname` or would: the last whose first item is ≤ it. */
  #blockFor(fname: string): number {
    const blocks = this.#blocks;
    let low = 0;
    let high = blocks.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (this.#compare(blocks[mid]![0]!.fname, fname) <= 0) low = mid;
      else high = mid - 1;
    }
    return low;
  }

  /** Index of the first item of `block` not before `fname`. */
  #firstAtOrAfter(block: T[], fname: string): number {
    let low = 0;
    let high = block.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (this.#compare(block[mid]!.fname, fname) < 0) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** Index of the first item of `block` after `fname`. */
  #firstAfter(block: T[], fname: string): number {
    const at = this.#firstAtOrAfter(block, fname);
    return at < block.length && block[at]!.fname === fname ? at + 1 : at;
  }
}
