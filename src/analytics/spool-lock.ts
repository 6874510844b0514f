// The analytics directory's lock: one writer at a time. Its owner refreshes it every few seconds, so a lock whose
// process cannot be looked up (another PID namespace: a container sharing the volume; another host) is judged by that,
// watched on this process's clock: the owner's may run behind or ahead of it.
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, linkSync, openSync, readFileSync, readlinkSync, renameSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';

const LOCK = 'LOCK';

export interface LockTiming {
  /** How often the owner refreshes its lock's modification time. */
  heartbeatMs: number;
  /** A lock of another PID namespace not refreshed for this long is taken over (see judgeByHeartbeat). */
  graceMs: number;
}

/**
 * Five heartbeats of grace: an owner's event loop stalled that long (a long GC, a host short of CPU) would otherwise
 * lose its directory. It is also how long a restart in another PID namespace (a container restarted) waits for the
 * lock its killed predecessor left.
 */
const LOCK_TIMING: LockTiming = { heartbeatMs: 2000, graceMs: 10_000 };

/** How often a starting process looks at a lock it cannot judge yet, for its owner's next heartbeat. */
const WATCH_POLL_MS = 100;

/** What a lock says of its owner; `token` tells this lock from any other, whatever the pids. */
const ownerSchema = z.object({
  token: z.string(),
  pid: z.number().int().positive(),
  host: z.string(),
  /** Linux's boot id and the owner's PID namespace (/proc/self/ns/pid): where its pid can be looked up. */
  boot: z.string().optional(),
  pidNamespace: z.string().optional(),
  /** The owner's start time in clock ticks after boot: its pid, once it dies, may be given to another process. */
  start: z.string().optional(),
});
type Owner = z.infer<typeof ownerSchema>;

/**
 * The previous release's lock: `<pid> <boot id>/<start ticks>`, written once and never refreshed. It has no heartbeat
 * to judge it by, and that release never notices a take-over: on this host's boot its pid decides, as there.
 */
const LEGACY_LOCK = /^(\d+) ([^\s/]+)\/(\d+)$/;

/** Directories held by pipelines of this process (one process could not tell two of them apart). */
const held = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function orUndefined<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

/** Process `pid`'s state and start time (clock ticks after boot) from Linux's /proc, or undefined. */
function procStat(pid: number): { state: string; startTicks: string } | undefined {
  const stat = orUndefined(() => readFileSync(`/proc/${pid}/stat`, 'utf8'));
  if (stat === undefined) return undefined;
  // Fields after the command name, which is in parentheses and may itself hold spaces or parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0], startTicks: fields[19] };
}

function describeSelf(token: string): Owner {
  return {
    token,
    pid: process.pid,
    host: hostname(),
    boot: orUndefined(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()),
    pidNamespace: orUndefined(() => readlinkSync('/proc/self/ns/pid')),
    start: procStat(process.pid)?.startTicks,
  };
}

function parseOwner(text: string): Owner | undefined {
  const parsed = ownerSchema.safeParse(orUndefined(() => JSON.parse(text)));
  return parsed.success ? parsed.data : undefined;
}

/** A lock of the previous release (see LEGACY_LOCK), with its owner as far as it tells. */
function parseLegacy(text: string): Pick<Owner, 'pid' | 'boot' | 'start'> | undefined {
  const m = LEGACY_LOCK.exec(text.trim());
  return m ? { pid: Number(m[1]), boot: m[2], start: m[3] } : undefined;
}

/** Whether `owner`'s pid means the same process here: same host, boot and PID namespace, all known. */
function sameNamespace(owner: Owner, me: Owner): boolean {
  return owner.host === me.host && me.boot !== undefined && owner.boot === me.boot && me.pidNamespace !== undefined && owner.pidNamespace === me.pidNamespace;
}

/**
 * Where the pid can be looked up, it decides: a lock of a process that died (or whose number another process has
 * now, or that is a zombie: killed, not yet reaped) is taken at once, one of a running process never. Undefined
 * when it cannot tell.
 */
function judgeByPid(owner: Pick<Owner, 'pid' | 'start'>): 'live' | 'stale' | undefined {
  // This process: no pipeline of it holds the directory (checked before), so one of it left the lock behind.
  if (owner.pid === process.pid || !alive(owner.pid)) return 'stale';
  const stat = procStat(owner.pid);
  if (!stat) return undefined;
  if (stat.state === 'Z' || stat.state === 'X') return 'stale';
  return stat.startTicks === owner.start ? 'live' : 'stale';
}

interface LockFile {
  text: string;
  modifiedAtMs: number;
  ino: number;
}

/** The lock file now there (text, time and inode read from one open file), or undefined when it is gone. */
function readLock(path: string): LockFile | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const stat = fstatSync(fd);
    return { text: readFileSync(fd, 'utf8'), modifiedAtMs: stat.mtimeMs, ino: stat.ino };
  } finally {
    closeSync(fd);
  }
}

function sameLock(a: LockFile, b: LockFile | undefined): boolean {
  // The inode alone is not enough: a file created after the stale one was deleted may reuse its number.
  return a.ino === b?.ino && a.text === b.text && a.modifiedAtMs === b.modifiedAtMs;
}

function describeOwner(lock: LockFile | undefined): string {
  const owner = lock && parseOwner(lock.text);
  if (owner) return `process ${owner.pid} on ${owner.host}`;
  const legacy = lock && parseLegacy(lock.text);
  return legacy ? `process ${legacy.pid}` : 'another process';
}

function inUse(dir: string, lock: LockFile | undefined): Error {
  return new Error(`analytics directory ${dir} is in use by ${describeOwner(lock)}; give each gateway process its own analytics.directory`);
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Locks a claim without waiting found, judged by their heartbeat: as first seen, when, and how long to watch them. */
const sightings = new Map<string, { lock: LockFile; at: number; watchMs: number }>();

/**
 * Judges `lock`, which its pid cannot, by its heartbeat, watched on the monotonic clock: stale once seen unchanged until
 * it has gone the grace without a refresh, and for a heartbeat and a half at least, so a refresh due meanwhile shows even
 * when late. Its time is set by its owner's clock: one running behind this one's made a lock refreshed every heartbeat
 * look older than the grace, and it was taken at once. With `wait`, this waits (blocking: start-up only) until it is
 * refreshed (live), removed (gone) or the watch is over (stale); without, it counts as live until a later claim finds it
 * unchanged after the watch. An older version's lock that its pid cannot judge (a pid only, never refreshed) is judged
 * the same way.
 */
function judgeByHeartbeat(path: string, lock: LockFile, timing: LockTiming, wait: boolean): 'live' | 'stale' | 'gone' {
  const age = Date.now() - lock.modifiedAtMs;
  const watchMs = Math.max(timing.heartbeatMs * 1.5, timing.graceMs - Math.max(0, age));
  if (!wait) {
    const seen = sightings.get(path);
    if (seen && sameLock(seen.lock, lock)) return performance.now() - seen.at >= seen.watchMs ? 'stale' : 'live';
    sightings.set(path, { lock, at: performance.now(), watchMs });
    return 'live';
  }
  const until = performance.now() + watchMs;
  for (let left = until - performance.now(); left > 0; left = until - performance.now()) {
    sleepSync(Math.min(WATCH_POLL_MS, left));
    const now = readLock(path);
    if (!now) return 'gone';
    if (!sameLock(lock, now)) return 'live';
  }
  return 'stale';
}

/**
 * Creates the lock unless one exists. link() fails when the name exists (as O_EXCL does), so of processes starting
 * at once exactly one creates it; and it appears whole, where a file created empty and then written could be read
 * empty by another starter in between, and taken over as not naming a process. The draft is named by the lock's
 * token: two starters in different PID namespaces may have the same pid.
 */
function createLock(path: string, owner: Owner): boolean {
  const draft = `${path}.${owner.token}.new`;
  try {
    // Inside the try: a full disk creates the draft and then fails its write, and the empty draft must not stay.
    writeFileSync(draft, JSON.stringify(owner));
    linkSync(draft, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    rmSync(draft, { force: true });
  }
}

/**
 * Removes the lock at `path` unless its owner may run (then throws). Another process starting now may have judged
 * the same stale lock, removed it and created its own already: unlinking by name would delete that live lock, so the
 * file is moved aside first and deleted only if it is the one judged (its heartbeat included); a live lock moved by
 * mistake is put back.
 */
function removeStaleLock(dir: string, path: string, me: Owner, timing: LockTiming, wait: boolean): void {
  const lock = readLock(path);
  if (!lock) return;
  const owner = parseOwner(lock.text);
  const legacy = owner ? undefined : parseLegacy(lock.text);
  const byPid = owner ? sameNamespace(owner, me) && judgeByPid(owner) : legacy && me.boot !== undefined && legacy.boot === me.boot && judgeByPid(legacy);
  const verdict = byPid || judgeByHeartbeat(path, lock, timing, wait);
  if (verdict === 'gone') return;
  if (verdict === 'live') throw inUse(dir, readLock(path) ?? lock);
  const aside = `${path}.${me.token}.old`;
  try {
    renameSync(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const moved = readLock(aside);
  if (sameLock(lock, moved)) {
    unlinkSync(aside);
    return;
  }
  linkSync(aside, path);
  unlinkSync(aside);
  throw inUse(dir, moved);
}

export interface LockOptions {
  /** Whether to wait (blocking) for a lock that only its heartbeat can judge; without, it counts as live. */
  wait?: boolean;
  timing?: LockTiming;
  /** Another process took the directory over: this one's lock went unrefreshed past the grace. Told once. */
  onLost?: (owner: string) => void;
  /** The heartbeat could not refresh the lock (told at each failure). */
  onHeartbeatError?: (err: unknown) => void;
}

/**
 * Claims the directory for this process: two writers would interleave segments and checkpoints. A lock of this PID
 * namespace, or the previous release's of this boot, is judged by its pid: taken over when its process died (SIGKILL)
 * or its number now belongs to another process. Any other is judged by its heartbeat: taken over once watched going
 * the grace without a refresh (see judgeByHeartbeat). Throws when the directory is in use.
 *
 * @example
 * const lock = lockDirectory(dir, { onLost: (owner) => stopWriting(owner) });
 * if (lock.held()) await writeCheckpoint(dir, position);
 * lock.release();
 */
export function lockDirectory(dir: string, { wait = true, timing = LOCK_TIMING, onLost, onHeartbeatError }: LockOptions = {}): DirectoryLock {
  const key = resolve(dir);
  const path = join(dir, LOCK);
  if (held.has(key)) throw new Error(`analytics directory ${dir} is already used by another pipeline in this process`);
  const me = describeSelf(randomBytes(16).toString('hex'));
  // Reading the lock and then writing it let two processes starting at once both take the directory.
  if (!createLock(path, me)) {
    removeStaleLock(dir, path, me, timing, wait);
    if (!createLock(path, me)) throw inUse(dir, readLock(path));
  }
  held.add(key);
  sightings.delete(path);
  return new DirectoryLock(key, path, me.token, timing, { onLost, onHeartbeatError });
}

/** A claimed directory: its lock refreshed every heartbeat while it is this process's. */
export class DirectoryLock {
  readonly #key: string;
  readonly #path: string;
  readonly #token: string;
  #events: Pick<LockOptions, 'onLost' | 'onHeartbeatError'>;
  readonly #heartbeat: NodeJS.Timeout;
  #lost = false;
  #released = false;

  constructor(key: string, path: string, token: string, timing: LockTiming, events: Pick<LockOptions, 'onLost' | 'onHeartbeatError'>) {
    this.#key = key;
    this.#path = path;
    this.#token = token;
    this.#events = events;
    // Synchronous: a refresh queued behind slow disk work in the thread pool (fdatasyncs) could miss the grace.
    this.#heartbeat = setInterval(() => this.#refresh(), timing.heartbeatMs).unref();
  }

  /** Who is told of a lost lock and failed refreshes, for a lock claimed before its user existed (a gateway's start). */
  listen(events: Pick<LockOptions, 'onLost' | 'onHeartbeatError'>): void {
    this.#events = events;
  }

  /**
   * Whether the lock file still names this lock: false once another process has taken the directory over, which it
   * then owns (its checkpoint and segments are not this one's to write or delete). A lock that cannot be read, or
   * is gone, is not someone else's: still held.
   */
  held(): boolean {
    if (this.#lost || this.#released) return false;
    let lock: LockFile | undefined;
    try {
      lock = readLock(this.#path);
    } catch {
      return true;
    }
    if (!lock || parseOwner(lock.text)?.token === this.#token) return true;
    this.#lost = true;
    clearInterval(this.#heartbeat);
    this.#events.onLost?.(describeOwner(lock));
    return false;
  }

  /** Removes the lock, unless another process has taken the directory over meanwhile. */
  release(): void {
    if (this.#released) return;
    const mine = this.held();
    this.#released = true;
    clearInterval(this.#heartbeat);
    held.delete(this.#key);
    if (!mine) return;
    try {
      unlinkSync(this.#path);
    } catch {
      // Already gone: nothing to release.
    }
  }

  #refresh(): void {
    if (!this.held()) return;
    try {
      const now = new Date();
      utimesSync(this.#path, now, now);
    } catch (err) {
      this.#events.onHeartbeatError?.(err);
    }
  }
}
