// A fixed-size set of piece indexes, with its base64 wire form. Pure: no I/O.

/** Which pieces of a file are held. Bit i is set when piece i is held and verified. */
export class Bitfield {
  /** Number of pieces the field describes. */
  readonly size: number;
  readonly #bits: Uint8Array;
  #count = 0;

  /**
   * @param size number of pieces
   * @param bits packed bits, most significant bit first (BitTorrent order); copied
   */
  constructor(size: number, bits?: Uint8Array) {
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new RangeError(`Invalid piece count ${size}`);
    }
    this.size = size;
    this.#bits = new Uint8Array(Math.ceil(size / 8));
    if (bits) {
      if (bits.length !== this.#bits.length) {
        throw new RangeError(
          `Cannot load bitfield: ${bits.length} bytes for ${size} pieces, expected ${this.#bits.length}`,
        );
      }
      this.#bits.set(bits);
      const spare = this.#bits.length * 8 - size;
      if (spare > 0) this.#bits[this.#bits.length - 1]! &= 0xff << spare;
      for (let i = 0; i < size; i++) if (this.has(i)) this.#count++;
    }
  }

  /**
   * Decodes the base64 form made by `toBase64()`.
   *
   * @throws {RangeError} on invalid base64 or a wrong length
   */
  static fromBase64(size: number, text: string): Bitfield {
    let bits: Uint8Array;
    try {
      bits = Uint8Array.fromBase64(text);
    } catch (err) {
      throw new RangeError(`Cannot decode a bitfield: ${(err as Error).message}`, { cause: err });
    }
    return new Bitfield(size, bits);
  }

  /** Returns a field with every piece set. */
  static full(size: number): Bitfield {
    const field = new Bitfield(size);
    for (let i = 0; i < size; i++) field.set(i);
    return field;
  }

  /** How many pieces are set. */
  get count(): number {
    return this.#count;
  }

  /** true when every piece is set. */
  get complete(): boolean {
    return this.#count === this.size;
  }

  /** Whether piece `index` is set. */
  has(index: number): boolean {
    if (index < 0 || index >= this.size) return false;
    return (this.#bits[index >> 3]! & (0x80 >> (index & 7))) !== 0;
  }

  /** Sets piece `index`. */
  set(index: number): void {
    if (index < 0 || index >= this.size) throw new RangeError(`Piece ${index} out of range`);
    if (this.has(index)) return;
    this.#bits[index >> 3]! |= 0x80 >> (index & 7);
    this.#count++;
  }

  /** The packed bits as base64, for the wire and for metadata files. */
  toBase64(): string {
    return this.#bits.toBase64();
  }
}
