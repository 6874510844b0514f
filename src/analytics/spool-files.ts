// The spool directory's small files: segment names and the checkpoint (how far the database has everything); the
// owner lock is in spool-lock.ts.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** A place in the spool: byte `offset` of segment number `segment`. */
export interface Position {
  segment: number;
  offset: number;
}

const SEGMENT_FILE = /^(\d{12})\.jsonl$/;
const CHECKPOINT = 'checkpoint.json';

export function segmentPath(dir: string, segment: number): string {
  return join(dir, `${String(segment).padStart(12, '0')}.jsonl`);
}

export interface SegmentListing {
  /** Segment number → size in bytes, in increasing order: the regular files named like segments. */
  sizes: Map<number, number>;
  /** Anything else named like a segment (a directory, a FIFO, a device): never read, and new segments are numbered past it. */
  strays: number[];
}

export function listSegments(dir: string): SegmentListing {
  const found: number[] = [];
  for (const name of readdirSync(dir)) {
    const m = SEGMENT_FILE.exec(name);
    if (m) found.push(Number(m[1]));
  }
  found.sort((a, b) => a - b);
  const listing: SegmentListing = { sizes: new Map(), strays: [] };
  for (const s of found) {
    try {
      const stat = statSync(segmentPath(dir, s));
      if (stat.isFile()) listing.sizes.set(s, stat.size);
      else listing.strays.push(s);
    } catch (err) {
      // Stored and being deleted by an earlier pipeline's last unlink: not a segment any more.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return listing;
}

/** Segment numbers fit the 12 digits of a segment's name. */
const MAX_SEGMENT = 999_999_999_999;

export function checkpointPath(dir: string): string {
  return join(dir, CHECKPOINT);
}

/** The saved position; undefined when there is none. Throws when it cannot be read or is not a position. */
export function readCheckpoint(dir: string): Position | undefined {
  let text: string;
  try {
    text = readFileSync(checkpointPath(dir), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let p: Partial<Position> | undefined;
  try {
    p = JSON.parse(text) as Partial<Position>;
  } catch {
    p = undefined;
  }
  const valid = (n: unknown, max: number) => Number.isSafeInteger(n) && (n as number) >= 0 && (n as number) <= max;
  if (!valid(p?.segment, MAX_SEGMENT) || !valid(p?.offset, Number.MAX_SAFE_INTEGER)) throw new Error(`not a checkpoint: ${JSON.stringify(text.slice(0, 100))}`);
  return { segment: p!.segment!, offset: p!.offset! };
}

/**
 * Written after each stored batch. rename() replaces the file atomically, so a crash leaves the old or the new
 * position, never half of one; the old one only makes the next start re-insert a batch the database skips.
 */
export async function writeCheckpoint(dir: string, position: Position): Promise<void> {
  const tmp = `${checkpointPath(dir)}.tmp`;
  await writeFile(tmp, JSON.stringify(position));
  await rename(tmp, checkpointPath(dir));
}
