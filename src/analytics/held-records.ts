// Records the spool could not write (disk full, I/O error), kept in memory within a bound until they are stored.

/** Memory for held records: about 50,000 typical records, minutes of a busy gateway's traffic at most. */
export const HELD_RECORDS_MAX_BYTES = 32 * 1024 * 1024;

/** A FIFO of spool lines bounded by their total length. */
export class HeldRecords {
  readonly #maxBytes: number;
  #lines: string[] = [];
  #bytes = 0;

  constructor(maxBytes = HELD_RECORDS_MAX_BYTES) {
    this.#maxBytes = maxBytes;
  }

  get count(): number {
    return this.#lines.length;
  }

  /** Keeps lines, in order, while they fit; returns how many did not (the caller drops them). */
  add(lines: readonly string[]): number {
    let kept = 0;
    for (const line of lines) {
      // String length, not bytes: records are mostly ASCII, and the bound is about memory, not the disk.
      if (this.#bytes + line.length > this.#maxBytes) break;
      this.#lines.push(line);
      this.#bytes += line.length;
      kept++;
    }
    return lines.length - kept;
  }

  /** The oldest `max` lines; they stay held until take() removes them. */
  peek(max: number): string[] {
    return this.#lines.slice(0, max);
  }

  /** Removes the oldest `n` lines (stored, or handed to the spool). */
  take(n: number): void {
    for (const line of this.#lines.splice(0, n)) this.#bytes -= line.length;
  }
}
