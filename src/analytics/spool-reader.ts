// The read side of the spool: complete lines from the committed position onwards, across segments, in write order.
import { closeSync, openSync, readSync } from 'node:fs';
import type { Spool } from './spool.js';
import { segmentPath, type Position } from './spool-files.js';

export interface SpoolBatch {
  lines: string[];
  /** Where the batch ends: the checkpoint to write once its records are stored. */
  end: Position;
  /** Lines cut short by a crash mid-write (never acknowledged to anyone) that were skipped. */
  torn: number;
}

/** Records are well under 4 KiB (model names are clipped), so one read holds hundreds of them. */
const CHUNK = 1024 * 1024;
const NEWLINE = 0x0a;

/**
 * Reads are synchronous: the data comes from the page cache (it was written moments ago), and one read(2) of a
 * batch costs less than the thread-pool round trips of an async open/read/close. The open segment is kept open.
 */
export class SpoolReader {
  readonly #spool: Spool;
  #position: Position;
  #buffer: Buffer | undefined;
  #fd = -1;
  #fdSegment = -1;

  constructor(spool: Spool, start: Position) {
    this.#spool = spool;
    this.#position = start;
  }

  get position(): Position {
    return this.#position;
  }

  /** Moves the committed position (after the batch ending there was stored). */
  commit(position: Position): void {
    this.#position = position;
  }

  /**
   * Up to `max` lines after the committed position; an empty batch whose end equals it means caught up. The active
   * segment is read up to what appendLines() had finished writing when the call began, so never half a line.
   */
  read(max: number): SpoolBatch {
    const lines: string[] = [];
    let { segment, offset } = this.#position;
    let torn = 0;
    const active = this.#spool.activeSegment;
    const activeEnd = this.#spool.activeSize;
    while (lines.length < max && segment <= active) {
      const sealed = segment < active;
      // Sized to what the batch can use (records average well under 1 KiB), so a batch does not read a MiB it drops;
      // never below 64 KiB, far above a record's 4 KiB bound, so one chunk always holds a whole line.
      const want = Math.min(CHUNK, Math.max(64 * 1024, (max - lines.length) * 1024));
      const length = sealed ? want : Math.min(want, activeEnd - offset);
      if (length <= 0) break;
      const chunk = this.#readAt(segment, offset, length);
      let used = 0;
      if (chunk) {
        for (let nl = chunk.indexOf(NEWLINE); nl !== -1 && lines.length < max; nl = chunk.indexOf(NEWLINE, used)) {
          if (nl > used) lines.push(chunk.toString('utf8', used, nl));
          used = nl + 1;
        }
        offset += used;
      }
      if (lines.length >= max) break;
      if (chunk && chunk.length === length) {
        if (used === 0) {
          // A whole chunk without a newline is not a record; skip it (the rest of it then fails to parse and is counted).
          torn++;
          offset += chunk.length;
        }
        continue;
      }
      if (!sealed) break;
      // End of a sealed segment: a last line without its newline is a write cut short by a crash.
      if (chunk && used < chunk.length) torn++;
      segment++;
      offset = 0;
    }
    return { lines, end: { segment, offset }, torn };
  }

  /** Releases the open segment. */
  close(): void {
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#fd = -1;
    this.#fdSegment = -1;
  }

  /** Up to `length` bytes at `offset` of a segment (a view valid until the next read); undefined when it is gone. */
  #readAt(segment: number, offset: number, length: number): Buffer | undefined {
    if (this.#fdSegment !== segment) {
      this.close();
      try {
        this.#fd = openSync(segmentPath(this.#spool.dir, segment), 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
      this.#fdSegment = segment;
    }
    if (!this.#buffer || this.#buffer.length < length) this.#buffer = Buffer.allocUnsafe(Math.max(length, 64 * 1024));
    const bytesRead = readSync(this.#fd, this.#buffer, 0, length, offset);
    return this.#buffer.subarray(0, bytesRead);
  }
}

/** How many complete lines lie after `from`, and the first of them (start-up only, so synchronous). */
export function scanBacklog(spool: Spool, from: Position): { lines: number; first?: string } {
  let lines = 0;
  let first: string | undefined;
  const buf = Buffer.allocUnsafe(CHUNK);
  for (const segment of spool.sealedSegments()) {
    if (segment < from.segment) continue;
    let fd: number;
    try {
      fd = openSync(segmentPath(spool.dir, segment), 'r');
    } catch {
      continue;
    }
    try {
      let pos = segment === from.segment ? from.offset : 0;
      for (let n = readSync(fd, buf, 0, CHUNK, pos); n > 0; n = readSync(fd, buf, 0, CHUNK, pos)) {
        let start = 0;
        for (let nl = buf.indexOf(NEWLINE); nl !== -1 && nl < n; nl = buf.indexOf(NEWLINE, start)) {
          if (nl > start) {
            first ??= buf.toString('utf8', start, nl);
            lines++;
          }
          start = nl + 1;
        }
        if (start === 0 && n === CHUNK) start = n;
        pos += start;
        if (n < CHUNK) break;
      }
    } finally {
      closeSync(fd);
    }
  }
  return { lines, first };
}
