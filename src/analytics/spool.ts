// The write side of the spool: records appended synchronously to numbered segment files, rotated by size, within a disk budget.
import { closeSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { listSegments, segmentPath } from './spool-files.js';

export type AppendOutcome = 'ok' | 'full' | 'failed';

export interface SpoolLimits {
  segmentBytes: number;
  maxDiskBytes: number;
}

/** After a failed write, opening a fresh segment is retried at most this often (not on every request). */
const REOPEN_INTERVAL_MS = 1000;

/**
 * appendLines writes whole lines, one write(2) per segment they land in, before it returns: the pipeline calls it
 * once per event-loop turn, and from then on the lines are in the kernel's page cache and survive SIGKILL of this
 * process (surviving power loss is what the pipeline's periodic fdatasync is for). A new process never appends to
 * an old segment: it starts a new one.
 */
export class Spool {
  readonly dir: string;
  /** Read at each append: the pipeline changes it in place when the settings are reloaded. */
  readonly #limits: SpoolLimits;
  /** Sealed segments still on disk and their sizes, in segment order (firstSegment and the reader rely on it). */
  #sealed: Map<number, number>;
  #diskBytes = 0;
  #active: number;
  #activeSize = 0;
  /** performance.now() times: a step of the wall clock must not keep a quiet segment open or a failed spool shut. */
  #openedAt = 0;
  #fd = -1;
  #closed = false;
  #reopenAt = 0;
  #activeDirty = false;
  #unsynced: number[] = [];
  /** The last write or open error (with the segment's path), for the error log. */
  lastError: Error | undefined;
  /** Failed writes and segment opens since start, for the metrics. */
  writeErrors = 0;
  /** Entries named like segments that are not files: never read; the pipeline warns about them. */
  readonly strays: readonly string[];

  /** `after`: the new segment's number must exceed it (the checkpoint may name a segment already deleted). */
  constructor(dir: string, limits: SpoolLimits, after = 0) {
    this.dir = dir;
    this.#limits = limits;
    const { sizes, strays } = listSegments(dir);
    this.#sealed = sizes;
    this.strays = strays.map((s) => segmentPath(dir, s));
    for (const size of this.#sealed.values()) this.#diskBytes += size;
    this.#active = Math.max(after, ...this.#sealed.keys(), ...strays) + 1;
    this.#open();
  }

  get activeSegment(): number {
    return this.#active;
  }

  /** Bytes of the active segment that were completely written: the reader never reads past them. */
  get activeSize(): number {
    return this.#activeSize;
  }

  get activeAgeMs(): number {
    return performance.now() - this.#openedAt;
  }

  get diskBytes(): number {
    return this.#diskBytes;
  }

  /** The oldest segment on disk (the active one when none is sealed). */
  get firstSegment(): number {
    for (const s of this.#sealed.keys()) return s;
    return this.#active;
  }

  sealedSegments(): IterableIterator<number> {
    return this.#sealed.keys();
  }

  /** The bytes a sealed segment holds (what was written to it, or its size when listed at start); undefined when it is not one. */
  sealedSize(segment: number): number | undefined {
    return this.#sealed.get(segment);
  }

  /** The segment the reader goes on to after `segment`: the next sealed one, or the active one. */
  segmentAfter(segment: number): number {
    for (const s of this.#sealed.keys()) if (s > segment) return s;
    return this.#active;
  }

  /**
   * Appends whole lines (each ending with '\n') with one write(2) per segment they land in: a segment is sealed once
   * it reaches segmentBytes, and the disk budget is checked line by line. `written` lines made it; when fewer than
   * all, `outcome` says why the rest did not.
   */
  appendLines(lines: readonly string[]): { written: number; outcome: AppendOutcome } {
    let written = 0;
    while (written < lines.length) {
      if (this.#fd < 0 && !this.#reopen()) return { written, outcome: 'failed' };
      // The lines that fit in the budget and up to (and including) the one that fills the active segment.
      let chunk = '';
      let bytes = 0;
      let end = written;
      while (end < lines.length) {
        const size = Buffer.byteLength(lines[end]);
        if (this.#diskBytes + bytes + size > this.#limits.maxDiskBytes) break;
        chunk += lines[end++];
        bytes += size;
        if (this.#activeSize + bytes >= this.#limits.segmentBytes) break;
      }
      if (end === written) return { written, outcome: 'full' };
      let n: number;
      try {
        n = writeSync(this.#fd, chunk);
      } catch (err) {
        this.#fail(err as Error);
        return { written, outcome: 'failed' };
      }
      if (n !== bytes) {
        this.#cutShort(n, bytes);
        return { written, outcome: 'failed' };
      }
      this.#activeSize += n;
      this.#diskBytes += n;
      this.#activeDirty = true;
      written = end;
      if (this.#activeSize >= this.#limits.segmentBytes) this.rotate();
    }
    return { written, outcome: 'ok' };
  }

  /** Seals the active segment and starts the next one. */
  rotate(): void {
    this.#seal();
    this.#open();
  }

  /**
   * Deletes sealed segments numbered below `segment` (the database has all their records). Off the event loop:
   * unlinking a full 16 MiB segment frees its pages in the kernel, over a millisecond that requests would wait.
   * A segment that cannot be deleted stays listed, for the next call to try again.
   */
  async removeBefore(segment: number): Promise<void> {
    const doomed = [...this.#sealed].filter(([s]) => s < segment);
    // Taken off the list at once, so an overlapping call neither deletes nor counts a segment twice. Their bytes leave
    // the disk budget now, a moment before the kernel frees them: maxDiskBytes is a soft limit by that much.
    for (const [s, size] of doomed) {
      this.#sealed.delete(s);
      this.#diskBytes -= size;
    }
    const failures = await Promise.all(
      doomed.map(([s, size]) =>
        unlink(segmentPath(this.dir, s)).then(
          () => null,
          (err: NodeJS.ErrnoException) => {
            if (err.code === 'ENOENT') return null;
            this.#sealed = new Map([...this.#sealed, [s, size] as const].sort((a, b) => a[0] - b[0]));
            this.#diskBytes += size;
            return err;
          },
        ),
      ),
    );
    const failed = failures.find((err) => err !== null);
    if (failed) throw failed;
  }

  /** Segments written since the last call, to fdatasync. */
  takeUnsynced(): number[] {
    const out = this.#unsynced;
    this.#unsynced = [];
    if (this.#activeDirty) out.push(this.#active);
    this.#activeDirty = false;
    return out;
  }

  close(): void {
    this.#closed = true;
    this.#closeFd();
  }

  #open(): void {
    this.#openedAt = performance.now();
    try {
      this.#fd = openSync(segmentPath(this.dir, this.#active), 'a');
    } catch (err) {
      this.#error(err as Error);
      // The next try uses the next name, in case something else now holds this one. The reader skips the gap.
      this.#active++;
      this.#reopenAt = performance.now() + REOPEN_INTERVAL_MS;
    }
  }

  #reopen(): boolean {
    if (this.#closed || performance.now() < this.#reopenAt) return false;
    this.#open();
    return this.#fd >= 0;
  }

  #seal(): void {
    this.#closeFd();
    this.#sealed.set(this.#active, this.#activeSize);
    if (this.#activeDirty) this.#unsynced.push(this.#active);
    this.#activeDirty = false;
    this.#active++;
    this.#activeSize = 0;
  }

  #fail(err: Error): void {
    this.#error(err);
    this.#seal();
    this.#reopenAt = performance.now() + REOPEN_INTERVAL_MS;
  }

  /**
   * Disk full mid-chunk: none of the chunk's lines count as written (the caller keeps them all), so the part that
   * made it is cut off again. Should that fail too, it stays: the reader skips its torn last line, and the database
   * skips the records it then gets twice.
   */
  #cutShort(n: number, bytes: number): void {
    try {
      ftruncateSync(this.#fd, this.#activeSize);
    } catch {
      this.#activeSize += n;
      this.#diskBytes += n;
      this.#activeDirty = true;
    }
    this.#fail(new Error(`short write (${n} of ${bytes} bytes)`));
  }

  #error(err: Error): void {
    this.writeErrors++;
    // A write(2) error does not say which file; the log should.
    this.lastError = Object.assign(err, { path: segmentPath(this.dir, this.#active) });
  }

  #closeFd(): void {
    if (this.#fd < 0) return;
    try {
      closeSync(this.#fd);
    } catch {
      // The descriptor is unusable either way.
    }
    this.#fd = -1;
  }
}
