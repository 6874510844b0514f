// The read side of the spool: complete lines from the committed position onwards, across segments, in write order.
import { closeSync, openSync, readSync } from 'node:fs';
import type { Spool } from './spool.js';
import { segmentPath, type Position } from './spool-files.js';

export interface SpoolBatch {
  /**
   * The batch's lines joined by newlines (none after the last): decoded a chunk at a time rather than line by line,
   * and what the writer thread is sent as it is.
   */
  text: string;
  /** Where each line starts (one per line: how many there are), for a warning that names a line the store cannot read. */
  at: Position[];
  /** Where the batch ends: the checkpoint to write once its records are stored. */
  end: Position;
  /**
   * Where each skipped damaged line starts: a segment's last line without its newline (an append cut short by a
   * crash), or a run of bytes longer than any record without a newline (garbage, or blocks a power loss left unwritten).
   */
  damaged: Position[];
}

/** Records are well under 4 KiB (model names are clipped), so one read holds hundreds of them. */
const CHUNK = 1024 * 1024;
const NEWLINE = 0x0a;
/** Lines per read when counting the backlog: a MiB-sized chunk's worth. */
const BACKLOG_BATCH = 10_000;

/**
 * Reads are synchronous: the data comes from the page cache (it was written moments ago), and one read(2) of a
 * batch costs less than the thread-pool round trips of an async open/read/close. The open segment is kept open.
 * Only what the spool accounts for is read: its sealed segments up to their size, the active one up to what has
 * been appended.
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
    const at: Position[] = [];
    const damaged: Position[] = [];
    let text = '';
    let { segment, offset } = this.#position;
    const active = this.#spool.activeSegment;
    const activeEnd = this.#spool.activeSize;
    /** Inside a damaged line already reported: its bytes up to the next newline are skipped too. */
    let skipping = false;
    while (at.length < max) {
      const size = segment === active ? activeEnd : this.#spool.sealedSize(segment);
      // Sized to what the batch can use (records average well under 1 KiB), so a batch does not read a MiB it drops;
      // never below 64 KiB, far above a record's 4 KiB bound, so a chunk without a newline is never a record.
      const want = Math.min(CHUNK, Math.max(64 * 1024, (max - at.length) * 1024));
      const chunk = size !== undefined && offset < size ? this.#readAt(segment, offset, Math.min(want, size - offset)) : undefined;
      if (!chunk || chunk.length === 0) {
        // The end of this segment, or it is gone (deleted, never created, emptied under us).
        if (segment >= active) break;
        segment = this.#spool.segmentAfter(segment);
        offset = 0;
        skipping = false;
        continue;
      }
      let used = 0;
      if (skipping) {
        const nl = chunk.indexOf(NEWLINE);
        used = nl === -1 ? chunk.length : nl + 1;
        skipping = nl === -1;
      }
      /** Where the lines read since the last empty line start: decoded together (a newline is one byte in UTF-8). */
      let run = -1;
      for (let nl = chunk.indexOf(NEWLINE, used); nl !== -1 && at.length < max; nl = chunk.indexOf(NEWLINE, used)) {
        if (nl > used) {
          if (run === -1) run = used;
          at.push({ segment, offset: offset + used });
        } else if (run !== -1) {
          text = joined(text, chunk.toString('utf8', run, used - 1));
          run = -1;
        }
        used = nl + 1;
      }
      if (run !== -1) text = joined(text, chunk.toString('utf8', run, used - 1));
      if (used === 0) {
        // Not one newline: no record is this long, and only a sealed segment can end without one.
        damaged.push({ segment, offset });
        skipping = true;
        used = chunk.length;
      }
      offset += used;
    }
    return { text, at, end: { segment, offset }, damaged };
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

/**
 * How many lines the reader will return after `from`, and the first of them, each shown to `visit` (start-up only, so
 * synchronous).
 */
export function scanBacklog(spool: Spool, from: Position, visit?: (line: string) => void): { lines: number; first?: string } {
  const reader = new SpoolReader(spool, from);
  let lines = 0;
  let first: string | undefined;
  try {
    for (;;) {
      const batch = reader.read(BACKLOG_BATCH);
      const count = batch.at.length;
      if (count > 0) {
        first ??= batch.text.split('\n', 1)[0];
        if (visit) for (const line of batch.text.split('\n')) visit(line);
      }
      lines += count;
      // A short batch reached the end.
      if (count < BACKLOG_BATCH) break;
      reader.commit(batch.end);
    }
  } finally {
    reader.close();
  }
  return { lines, first };
}

/** `text`'s lines and then `line`, joined by newlines. */
function joined(text: string, line: string): string {
  return text === '' ? line : text + '\n' + line;
}
