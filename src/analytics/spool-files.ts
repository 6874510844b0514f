// The spool directory's small files: segment names, the checkpoint (how far the database has everything) and the owner lock.
import { closeSync, fstatSync, linkSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

/** A place in the spool: byte `offset` of segment number `segment`. */
export interface Position {
  segment: number;
  offset: number;
}

const SEGMENT_FILE = /^(\d{12})\.jsonl$/;
const CHECKPOINT = 'checkpoint.json';
const LOCK = 'LOCK';

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

/** Directories held by pipelines of this process (a pid check cannot tell two of them apart). */
const held = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Process `pid`'s state and start time (clock ticks after boot) from Linux's /proc, or undefined. */
function procStat(pid: number): { state: string; startTicks: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may itself hold spaces or parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0], startTicks: fields[19] };
  } catch {
    return undefined;
  }
}

/**
 * Which process `pid` is, beyond its number (reused once it dies): the boot and the process's start time, from
 * Linux's /proc; null for a zombie (killed, not yet reaped: it holds nothing); undefined where /proc cannot tell.
 */
function processIdentity(pid: number): string | null | undefined {
  const stat = procStat(pid);
  if (!stat) return undefined;
  if (stat.state === 'Z' || stat.state === 'X') return null;
  try {
    return `${readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()}/${stat.startTicks}`;
  } catch {
    return undefined;
  }
}

/** When process `pid` started, in epoch ms (clock ticks at the USER_HZ of 100), or undefined. */
function startedAtMs(pid: number): number | undefined {
  const ticks = Number(procStat(pid)?.startTicks);
  try {
    const boot = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]);
    return Number.isFinite(ticks) && Number.isFinite(boot) ? boot * 1000 + ticks * 10 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether the lock's owner (`pid identity`, or a bare `pid` as older versions wrote) still runs: not its number
 * reused by another. A bare pid's process must have started before the lock was written.
 */
function ownerRuns(lock: string, writtenAtMs: number): { pid: number; runs: boolean } | undefined {
  const [pidText, identity] = lock.trim().split(' ');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return undefined;
  if (!alive(pid)) return { pid, runs: false };
  const now = processIdentity(pid);
  if (now === null) return { pid, runs: false };
  if (identity !== undefined && now !== undefined) return { pid, runs: now === identity };
  const started = startedAtMs(pid);
  // A second of slack: the clock ticks and the file time are coarse.
  return { pid, runs: started === undefined || started <= writtenAtMs + 1000 };
}

function inUse(dir: string, lock: { text: string } | undefined): Error {
  const by = lock ? `process ${lock.text.trim().split(' ')[0]}` : 'another process';
  return new Error(`analytics directory ${dir} is in use by ${by}; give each gateway process its own analytics.directory`);
}

/**
 * Creates the lock unless one exists. link() fails when the name exists (as O_EXCL does), so of processes starting
 * at once exactly one creates it; and it appears whole, where a file created empty and then written could be read
 * empty by another starter in between, and taken over as not naming a process.
 */
function createLock(path: string, text: string): boolean {
  const draft = `${path}.${process.pid}.new`;
  try {
    // Inside the try: a full disk creates the draft and then fails its write, and the empty draft must not stay.
    writeFileSync(draft, text);
    linkSync(draft, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    rmSync(draft, { force: true });
  }
}

/** The lock file now there (text, time and inode read from one open file), or undefined when it is gone. */
function readLock(path: string): { text: string; writtenAtMs: number; ino: number } | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const stat = fstatSync(fd);
    return { text: readFileSync(fd, 'utf8'), writtenAtMs: stat.mtimeMs, ino: stat.ino };
  } finally {
    closeSync(fd);
  }
}

/**
 * Removes the lock at `path` unless its owner runs (then throws). Another process starting now may have judged the
 * same stale lock, removed it and created its own already: unlinking by name would delete that live lock, so the file
 * is moved aside first and deleted only if it is the one judged; a live lock moved by mistake is put back.
 */
function removeStaleLock(dir: string, path: string): void {
  const lock = readLock(path);
  if (!lock) return;
  const owner = ownerRuns(lock.text, lock.writtenAtMs);
  if (owner?.runs) throw inUse(dir, lock);
  const aside = `${path}.${process.pid}.old`;
  try {
    renameSync(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const moved = readLock(aside);
  // The inode alone is not enough: a file created after the stale one was deleted may reuse its number.
  if (moved?.ino === lock.ino && moved.text === lock.text) {
    unlinkSync(aside);
    return;
  }
  linkSync(aside, path);
  unlinkSync(aside);
  throw inUse(dir, moved);
}

/**
 * Claims the directory for this process: two writers would interleave segments and checkpoints. A lock left by a
 * dead process (SIGKILL) is taken over, and so is one whose process number now belongs to another process. Returns
 * the release function.
 */
export function lockDirectory(dir: string): () => void {
  const key = resolve(dir);
  const path = join(dir, LOCK);
  if (held.has(key)) throw new Error(`analytics directory ${dir} is already used by another pipeline in this process`);
  // A lock naming only a pid (a process whose number was reused since, a zombie) once kept a restart out for good.
  const identity = processIdentity(process.pid);
  const text = identity ? `${process.pid} ${identity}` : String(process.pid);
  // Reading the lock and then writing it let two processes starting at once both take the directory.
  if (!createLock(path, text)) {
    removeStaleLock(dir, path);
    if (!createLock(path, text)) throw inUse(dir, readLock(path));
  }
  held.add(key);
  return () => {
    held.delete(key);
    try {
      unlinkSync(path);
    } catch {
      // Already gone: nothing to release.
    }
  };
}
