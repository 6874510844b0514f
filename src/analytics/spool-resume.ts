// Where reading resumes at start-up: the checkpoint when it can be trusted, otherwise everything still on disk.
import { closeSync, openSync, readSync } from 'node:fs';
import { Spool, type SpoolLimits } from './spool.js';
import { readCheckpoint, segmentPath, type Position } from './spool-files.js';

export interface Resumed {
  spool: Spool;
  from: Position;
  /** Why a checkpoint that was there is not used (it is then replaced after the first stored batch). */
  distrust?: string;
}

const NEWLINE = 0x0a;

/**
 * Reading resumes at the checkpoint when it names the start of a line in a segment on disk. Anything else cannot
 * tell what is stored, so reading starts at the first segment on disk: the database skips the records it already
 * has, and nothing on disk is skipped. That is quiet for offset 0 of a segment that is not there (normal when the
 * spool could not create it), and `distrust` says why for the rest: unreadable, garbage, past a segment's end,
 * inside a line, an offset in a segment that is gone.
 */
export function resumeSpool(dir: string, limits: SpoolLimits): Resumed {
  let checkpoint: Position | undefined;
  let distrust: string | undefined;
  try {
    checkpoint = readCheckpoint(dir);
  } catch (err) {
    distrust = (err as Error).message;
  }
  const spool = new Spool(dir, limits, checkpoint?.segment);
  distrust ??= checkpoint && untrusted(spool, checkpoint);
  const trusted = checkpoint && !distrust && spool.sealedSize(checkpoint.segment) !== undefined;
  return { spool, from: trusted ? checkpoint! : { segment: spool.firstSegment, offset: 0 }, distrust };
}

/** Why the checkpoint cannot be trusted, or undefined when it can. */
function untrusted(spool: Spool, { segment, offset }: Position): string | undefined {
  const size = spool.sealedSize(segment);
  const file = segmentPath(spool.dir, segment);
  if (size === undefined) return offset === 0 ? undefined : `it names offset ${offset} of ${file}, which is not there`;
  if (offset > size) return `it names offset ${offset} of ${file}, which holds ${size} bytes`;
  if (offset === 0) return undefined;
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const byte = Buffer.alloc(1);
    if (readSync(fd, byte, 0, 1, offset - 1) === 1 && byte[0] === NEWLINE) return undefined;
    return `offset ${offset} of ${file} is not the start of a line`;
  } catch (err) {
    return `${file} cannot be read: ${(err as Error).message}`;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
