// AnalyticsPipeline: records spooled synchronously to local segment files, then stored in the database in batches, exactly once.
import { mkdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Registry } from 'prom-client';
import type { RequestContext } from '../gateway/context.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import { withTimeout } from '../lib/with-timeout.js';
import { deleteInChunks } from '../store/chunked-delete.js';
import type { AnalyticsRecordRow, Database } from '../store/index.js';
import { backoffDelay } from './backoff.js';
import { HeldRecords } from './held-records.js';
import { PendingAges } from './pending-ages.js';
import { registerPipelineMetrics, type Outcome } from './pipeline-metrics.js';
import { recordIdTime } from './record-id.js';
import { recordLine, recordRow, type AnalyticsRecord, type RequestIdentity } from './record.js';
import { openRecordWriter, type RecordWriter } from './record-writer.js';
import type { AnalyticsSettings } from './settings.js';
import type { AppendOutcome, Spool, SpoolLimits } from './spool.js';
import { checkpointPath, segmentPath, writeCheckpoint } from './spool-files.js';
import { lockDirectory, type DirectoryLock } from './spool-lock.js';
import { resumeSpool } from './spool-resume.js';
import { scanBacklog, SpoolReader, type SpoolBatch } from './spool-reader.js';
import type { StoreOutcome } from './store-lines.js';

export interface AnalyticsPipelineOptions {
  db: Database;
  /**
   * The URL `db` was opened with (and its PostgreSQL schema): a file or PostgreSQL database is written by a thread
   * of its own with its own connection; without one (or in memory) records are stored from the event loop.
   */
  databaseUrl?: string;
  databaseSchema?: string;
  settings: AnalyticsSettings;
  registry: Registry;
  logger?: Logger;
  /** The directory, already claimed (claimDirectory) before anything the start could refuse wrote elsewhere. */
  claimed?: DirectoryLock;
}

/**
 * Locks `dir` for a pipeline made later (AnalyticsPipelineOptions.claimed), so that a start refused because another
 * live process holds it is refused before it writes anything else (the store's file-declared products). Throws when the
 * directory cannot be used; undefined when its disk has no room for the lock: the pipeline's start handles that.
 */
export function claimDirectory(dir: string): DirectoryLock | undefined {
  try {
    return lockAt(dir, true);
  } catch (err) {
    if (NO_ROOM.has((err as NodeJS.ErrnoException).code ?? '')) return undefined;
    throw err;
  }
}

function lockAt(dir: string, wait: boolean): DirectoryLock {
  mkdirSync(dir, { recursive: true });
  return lockDirectory(dir, { wait });
}

const RETENTION_INTERVAL_MS = 3_600_000;
/** A quiet active segment is sealed after this, so its committed records leave the disk too. */
const SEGMENT_MAX_AGE_MS = 60_000;
/**
 * close() waits this long in all for a last batch, a retention delete under way and the writer's end; whatever is
 * left is stored at the next start.
 */
const CLOSE_WAIT_MS = 5000;
/** At most one drop log line per this interval (each carries the count), so a full disk cannot flood the log. */
const DROP_LOG_INTERVAL_MS = 1000;
const FILE_TROUBLE_LOG_INTERVAL_MS = 60_000;
/**
 * Errors of a disk without room, which the directory's claim (its lock file) needs a little of: a passing state, as
 * a full disk is for a running pipeline, unlike a directory that cannot be used (not writable, held by another process).
 */
const NO_ROOM = new Set(['ENOSPC', 'EDQUOT']);
/** A claim that found no room is tried again before the batches at most this often. */
const CLAIM_RETRY_MS = 1000;

type FileTrouble = 'deletion' | 'checkpoint' | 'claim' | 'heartbeat';

/**
 * Durability: the records finished in one event-loop turn are appended to the active segment with one synchronous
 * write(2) at the end of that turn, and the data plane sends each answer's last bytes only after its record's write
 * (group commit), so no client holds a finished answer whose record is not in the kernel: SIGKILL loses nothing.
 * One write per turn instead of per record is what keeps records cheap under load. Every flushInterval the
 * segments written since are fdatasync'ed off the event loop, which bounds what a power loss can take to about one
 * interval. Batches go to the database in file order; the checkpoint is written after each stored batch, and the
 * database skips record ids it already has, so replays after a crash or an outage store every record exactly once.
 * The exception is a spool that cannot be written (disk full, I/O error): the answer still goes out, and its record
 * waits in memory (bounded) for the next batch, exposed to a crash until then (see #hold).
 *
 * @example
 * const pipeline = new AnalyticsPipeline({ db, settings: settings.analytics, registry, logger });
 * pipeline.start();
 * hooks.complete = (ctx) => pipeline.recordRequest(ctx, identity);
 * await pipeline.close();
 */
export class AnalyticsPipeline {
  readonly #writer: RecordWriter;
  #started = false;
  #settings: AnalyticsSettings;
  /** The spool reads these at each append; reconfigure() changes them in place. */
  readonly #limits: SpoolLimits;
  readonly #logger: Logger;
  readonly #counts: Record<Outcome, number> = { written: 0, spooled: 0, dropped: 0 };
  #spool: Spool | undefined;
  #reader: SpoolReader | undefined;
  #lock: DirectoryLock | undefined;
  /** Another process took the directory over (see #directoryTaken). */
  #taken = false;
  /** Failed claims of the directory (counted as spool write errors); the next is not tried before #claimAt. */
  #claimErrors = 0;
  /**
   * performance.now() of the next try. Every time this class measures (waits, log intervals, ages) is on that
   * monotonic clock: a step of the wall clock must not stretch or skip one.
   */
  #claimAt = 0;
  #timer: NodeJS.Timeout | undefined;
  /** When the pending #timer was set (undefined while a batch is under way or none is due). */
  #timerSetAt: number | undefined;
  #retentionTimer: NodeJS.Timeout | undefined;
  #retaining: Promise<void> = Promise.resolve();
  #chain: Promise<unknown> = Promise.resolve();
  #failures = 0;
  /** Records the database does not have yet: in the spool, or held in memory while the spool cannot be written. */
  #pending = 0;
  readonly #held = new HeldRecords();
  #spoolFailing = false;
  #syncErrors = 0;
  /** How long the records not yet stored have waited. */
  readonly #ages = new PendingAges();
  #unloggedDrops = 0;
  #dropLoggedAt = -Infinity;
  readonly #fileWarnedAt: Record<FileTrouble, number> = { deletion: -Infinity, checkpoint: -Infinity, claim: -Infinity, heartbeat: -Infinity };
  #closed = false;
  #released = false;
  #retentionFailures = 0;
  #retentionRetry: NodeJS.Timeout | undefined;
  /** Claimed before this was made, and handed to the first claim. */
  #claimed: DirectoryLock | undefined;
  /** The current event-loop turn's records, written together by #writeTurn. */
  #turn: string[] = [];
  #turnWaiting: (() => void)[] = [];
  #turnScheduled = false;
  #onBacklogResponse: ((id: string, row: AnalyticsRecordRow) => void) | undefined;

  constructor(opts: AnalyticsPipelineOptions) {
    this.#settings = opts.settings;
    this.#limits = { segmentBytes: opts.settings.segmentBytes, maxDiskBytes: opts.settings.maxDiskBytes };
    this.#logger = opts.logger ?? silentLogger;
    this.#claimed = opts.claimed;
    this.#writer = openRecordWriter({ db: opts.db, databaseUrl: opts.databaseUrl, databaseSchema: opts.databaseSchema, logger: this.#logger });
    registerPipelineMetrics(opts.registry, {
      counts: this.#counts,
      lagSeconds: () => this.lagSeconds,
      spooledRecords: () => this.spooledRecords,
      spoolErrors: () => ({ write: (this.#spool?.writeErrors ?? 0) + this.#claimErrors, sync: this.#syncErrors }),
    });
  }

  /** Where the spool lives (fixed at construction: a reload does not move it). */
  get directory(): string {
    return this.#settings.directory;
  }

  /** Seconds since the oldest record not yet in the database finished; 0 when all are stored. */
  get lagSeconds(): number {
    return this.#ages.oldestAgeMs() / 1000;
  }

  /** Records the database does not have yet: in the local files, or in memory while those cannot be written. */
  get spooledRecords(): number {
    return this.#pending + this.#turn.length;
  }

  /**
   * `visit` is told, as the spool is claimed (start()), of each stored Responses API answer whose creation record an
   * earlier process left there: after a crash, records the database may not have for a while yet.
   */
  onBacklogResponse(visit: (id: string, row: AnalyticsRecordRow) => void): void {
    this.#onBacklogResponse = visit;
  }

  /**
   * Claims the directory, opens a new segment, and starts storing what earlier processes left behind (in order)
   * together with new records. Throws when the directory cannot be used (not writable, held by another live
   * process). A disk with no room for the claim does not throw: records are then held in memory and go straight to
   * the database, as when a running pipeline's spool cannot be written, and the claim is tried again before each batch.
   * A lock of another PID namespace refreshed within its grace is waited for (blocking, at most the grace: see
   * lockDirectory), until it is refreshed again (in use) or not.
   */
  start(): void {
    const noRoom = this.#claim(true);
    if (noRoom) {
      this.#spoolFailing = true;
      this.#logger.error({ err: noRoom, directory: this.#settings.directory }, 'cannot claim the analytics directory: no room on its disk; records wait in memory and go straight to the database until it can be claimed');
    }
    this.#started = true;
    this.#schedule(0);
    // Its first chunk starts the writer thread now, not at the first batch.
    this.#retain();
    this.#retentionTimer = setInterval(() => this.#retain(), RETENTION_INTERVAL_MS).unref();
  }

  /**
   * Locks the directory and opens its spool; returns the error when its disk has no room for the lock (the directory
   * is then left alone: another process may claim it meanwhile). Throws when the directory cannot be used. `wait`:
   * whether a lock only its heartbeat can judge is waited for, or counted as in use (a running pipeline's retries).
   */
  #claim(wait: boolean): NodeJS.ErrnoException | undefined {
    const dir = this.#settings.directory;
    try {
      this.#lock = this.#claimed ?? lockAt(dir, wait);
      this.#claimed = undefined;
      this.#lock.listen({
        onLost: this.#directoryTaken,
        onHeartbeatError: (err) => this.#fileTrouble('heartbeat', { err, directory: dir }, 'cannot refresh the analytics directory lock; another process may take the directory over'),
      });
    } catch (err) {
      if (!NO_ROOM.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
      this.#claimErrors++;
      this.#claimAt = performance.now() + CLAIM_RETRY_MS;
      return err as NodeJS.ErrnoException;
    }
    try {
      const { spool, from, distrust } = resumeSpool(dir, this.#limits);
      if (distrust) {
        this.#logger.warn({ file: checkpointPath(dir), problem: distrust }, 'the analytics checkpoint cannot be trusted; replaying every spooled record (the database skips those it has)');
      }
      if (spool.strays.length > 0) this.#logger.warn({ paths: spool.strays }, 'ignoring entries of the analytics directory named like segments that are not files');
      const backlog = scanBacklog(spool, from, this.#onBacklogResponse && this.#backlogLine);
      this.#spool = spool;
      this.#reader = new SpoolReader(spool, from);
      // Segments the checkpoint has passed: deleted before the first batch is shipped (the chain orders them).
      void this.#exclusive(() => spool.removeBefore(from.segment).catch(this.#deletionFailed));
      // Records held while the claim waited for room are pending too; the backlog is older than they are.
      this.#pending += backlog.lines;
      if (backlog.first !== undefined) {
        this.#ages.addOldest(backlog.lines, this.#ageOf(backlog.first));
        this.#logger.info({ records: backlog.lines, directory: dir }, 'storing analytics records left by an earlier process');
      }
    } catch (err) {
      this.#lock.release();
      throw err;
    }
    return undefined;
  }

  /** Before a batch: the claim that found no room, tried again (from then on records are spooled as usual). */
  #reclaim(): void {
    if (this.#spool || this.#closed || performance.now() < this.#claimAt) return;
    try {
      this.#claim(false);
    } catch (err) {
      // Taken by another process meanwhile, or no longer usable: records keep going straight to the database.
      this.#claimAt = performance.now() + CLAIM_RETRY_MS;
      this.#fileTrouble('claim', { err, directory: this.#settings.directory }, 'cannot claim the analytics directory; records wait in memory and go straight to the database');
    }
  }

  /**
   * Hot path: the record of a request that has just finished (see recordFromContext), serialised straight from its
   * context and queued; never throws, never waits for the database. The records of one event-loop turn go to the
   * spool together, in one write(2), at the end of the turn (group commit). `then` runs once the record is in the
   * kernel — the data plane sends an answer's last bytes from it, so no client holds a finished answer whose record a
   * SIGKILL could still take.
   */
  recordRequest(ctx: RequestContext, identity: RequestIdentity | undefined, then?: () => void): void {
    this.#queue(recordLine(ctx, identity), then);
  }

  /** A record made elsewhere, queued as recordRequest queues its own. */
  record(r: AnalyticsRecord, then?: () => void): void {
    this.#queue(JSON.stringify(r) + '\n', then);
  }

  #queue(line: string, then: (() => void) | undefined): void {
    this.#turn.push(line);
    if (then) this.#turnWaiting.push(then);
    if (!this.#turnScheduled) {
      this.#turnScheduled = true;
      setImmediate(this.#writeTurn);
    }
  }

  #writeTurn = (): void => {
    this.#turnScheduled = false;
    const lines = this.#turn;
    if (lines.length > 0) {
      this.#turn = [];
      const { written, outcome } = this.#spool?.appendLines(lines) ?? { written: 0, outcome: 'failed' as AppendOutcome };
      this.#counts.spooled += written;
      this.#waitFor(written);
      if (outcome === 'full') this.#drop(lines.length - written, 'the spool reached analytics.maxDiskBytes');
      else if (outcome === 'failed') this.#hold(lines.slice(written));
      else if (this.#spoolFailing) {
        this.#spoolFailing = false;
        this.#logger.info({ held: this.#held.count }, 'the analytics spool is written again');
      }
    }
    // Answers are never held hostage by a failing spool: a record it cannot take is held or dropped, and logged.
    const waiting = this.#turnWaiting;
    if (waiting.length > 0) {
      this.#turnWaiting = [];
      for (const then of waiting) then();
    }
  };

  /**
   * The spool cannot be written (disk full, I/O error): an answer is never failed or delayed for its record, so the
   * records wait in memory, within a bound, and go straight to the database with the next batch. Until then a crash
   * takes them; past the bound they are dropped. The spool is tried again with the next turn after a second.
   */
  #hold(lines: string[]): void {
    // Recorded after close() finished (or before start()): nothing would ever store them.
    if (this.#released || !this.#started) return this.#drop(lines.length, 'the pipeline is not running');
    if (!this.#spoolFailing) {
      this.#spoolFailing = true;
      this.#logger.error({ err: this.#spool?.lastError }, 'cannot write the analytics spool; records wait in memory and go straight to the database');
    }
    const dropped = this.#held.add(lines);
    this.#waitFor(lines.length - dropped);
    if (dropped > 0) this.#drop(dropped, 'the spool cannot be written and the memory for records waiting on it is full');
  }

  /** At close, what is still held gets a last try at the spool (the disk may have room again), for the next start to store. */
  #spoolHeld(): void {
    const lines = this.#held.peek(this.#held.count);
    if (lines.length === 0) return;
    const { written } = this.#spool?.appendLines(lines) ?? { written: 0 };
    this.#held.take(lines.length);
    this.#counts.spooled += written;
    if (written < lines.length) this.#drop(lines.length - written, 'held while the spool could not be written, and neither stored nor spooled before close');
  }

  #waitFor(records: number): void {
    this.#ages.add(records);
    this.#pending += records;
  }

  /** Stores everything recorded so far; rejects when the database fails (the records stay spooled). */
  flush(): Promise<void> {
    this.#writeTurn();
    return this.#exclusive(() => this.#ship());
  }

  /**
   * Reloaded settings. Flush interval (the next flush comes one new interval after the last), batch size, write
   * timeout, retention, disk budget and segment size apply from now on; `enabled` and `directory` stay as the
   * pipeline started (they take a restart: the directory is claimed and replayed at start).
   */
  reconfigure(settings: AnalyticsSettings): void {
    const before = this.#settings;
    this.#settings = { ...settings, enabled: before.enabled, directory: before.directory };
    this.#limits.segmentBytes = settings.segmentBytes;
    this.#limits.maxDiskBytes = settings.maxDiskBytes;
    // A retry after a failure waits its backoff, not the interval.
    if (settings.flushInterval !== before.flushInterval && this.#timerSetAt !== undefined && this.#failures === 0) {
      const setAt = this.#timerSetAt;
      clearTimeout(this.#timer);
      this.#schedule(Math.max(0, setAt + settings.flushInterval - performance.now()), setAt);
    }
  }

  /**
   * Deletes database records older than the retention period (`now` is a wall-clock time, as record times are);
   * returns how many. It goes by the writer, a chunk at a time: on a file or PostgreSQL database in the writer thread,
   * where waiting for another process's lock (SQLite's busy timeout) does not hold the event loop; batches are stored
   * between chunks, and on an in-memory database requests are served between them.
   */
  async applyRetention(now: number = Date.now()): Promise<number> {
    const before = now - this.#settings.retention;
    return deleteInChunks(() => this.#writer.deleteChunk(before, this.#settings.writeTimeout), () => this.#closed);
  }

  /** Stores what it can within a few seconds, then releases the directory; the rest is stored at the next start. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    clearInterval(this.#retentionTimer);
    clearTimeout(this.#retentionRetry);
    if (!this.#started) {
      this.#claimed?.release();
      return this.#writer.close(CLOSE_WAIT_MS);
    }
    const deadline = performance.now() + CLOSE_WAIT_MS;
    try {
      // Both wait on the one writer, so on a locked records table the flush queues behind the retention delete,
      // which alone would take its writeTimeout (30 s by default): past a pod's grace period.
      await withTimeout(Promise.all([this.flush(), this.#retaining]), CLOSE_WAIT_MS, 'the last analytics batch');
    } catch (err) {
      this.#logger.warn({ err, records: this.#pending }, 'analytics records stay in the spool until the next start');
    }
    this.#spoolHeld();
    this.#logDrops();
    // What is still running on the writer is cut by ending its thread; a delete cut short is done at the next start.
    await this.#writer.close(Math.max(0, deadline - performance.now()));
    this.#reader?.close();
    this.#spool?.close();
    this.#released = true;
    this.#lock?.release();
  }

  /** One database writer at a time: the timer's batches and flush() calls queue behind each other. */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn);
    this.#chain = run.catch(() => {});
    return run;
  }

  #schedule(delay: number, setAt = performance.now()): void {
    if (this.#closed) return;
    this.#timerSetAt = setAt;
    this.#timer = setTimeout(this.#tick, delay).unref();
  }

  #tick = (): void => {
    this.#timerSetAt = undefined;
    this.#exclusive(() => this.#ship()).then(
      () => {
        if (this.#failures > 0) this.#logger.info({ failures: this.#failures }, 'analytics records are being stored again');
        this.#failures = 0;
      },
      (err) => {
        this.#failures++;
        if (this.#failures === 1 || this.#failures % 20 === 0) {
          this.#logger.warn({ err, failures: this.#failures, records: this.#pending }, 'cannot store analytics records; they wait in the spool');
        }
      },
    ).finally(() => {
      this.#maintain();
      this.#schedule(this.#failures > 0 ? backoffDelay(this.#failures) : this.#settings.flushInterval);
    });
  };

  /** The spool's batches, then what is held in memory. */
  async #ship(): Promise<void> {
    this.#reclaim();
    if (this.#spool) await this.#shipSpool();
    await this.#shipHeld();
  }

  /** Stores batches until the reader has caught up with what was written when the batch was read. */
  async #shipSpool(): Promise<void> {
    const spool = this.#spool!;
    const reader = this.#reader!;
    for (;;) {
      const start = reader.position;
      const batch = reader.read(this.#settings.batchSize);
      const count = batch.at.length;
      if (count === 0 && batch.end.segment === start.segment && batch.end.offset === start.offset) return;
      const outcome: StoreOutcome = count > 0 ? await this.#insert(batch.text) : { stored: 0, unreadable: [], refused: [] };
      // A close() that gave up waiting has released the directory; a newer pipeline may own the checkpoint now.
      if (this.#released) return;
      // So may another process that took the directory over: what is left of this one's spool is still read and
      // stored, but the checkpoint and the segments are that process's now.
      const owned = this.#lock!.held();
      // A checkpoint that cannot be written (a full disk) must not hold up the batches after this one, nor the
      // deletes that free the disk: a stale checkpoint only makes a restart store records again, which the database skips.
      if (owned) await writeCheckpoint(spool.dir, batch.end).catch(this.#checkpointFailed);
      reader.commit(batch.end);
      // Reported once the batch is behind the checkpoint, so a batch retried after a failure is not reported twice.
      this.#reportDamage(batch, outcome.unreadable);
      this.#stored(count, outcome);
      // The batch is stored whatever happens to its files: a segment that cannot be deleted is retried next time.
      if (owned) await spool.removeBefore(batch.end.segment).catch(this.#deletionFailed);
      // A short batch reached what had been written when it was read. Chasing what was appended since would, under
      // steady load, store a handful of records per INSERT and checkpoint; they wait for the next tick instead.
      if (count < this.#settings.batchSize) return;
    }
  }

  /** Records held while the spool could not be written, oldest first, straight into the database. */
  async #shipHeld(): Promise<void> {
    while (this.#held.count > 0) {
      const lines = this.#held.peek(this.#settings.batchSize);
      // Each held line still ends with its newline, as spooled.
      const outcome = await this.#insert(lines.join('').slice(0, -1));
      this.#held.take(lines.length);
      this.#stored(lines.length, outcome);
    }
  }

  /**
   * One batch (lines joined by newlines) into the database; a write that has not answered within writeTimeout counts
   * as failed (retried).
   */
  #insert(text: string): Promise<StoreOutcome> {
    return this.#writer.store(text, this.#settings.batchSize, this.#settings.writeTimeout);
  }

  /** Accounts for `lines` records that went to the database. */
  #stored(lines: number, outcome: StoreOutcome): void {
    this.#counts.written += this.#dropRefused(outcome);
    this.#pending = Math.max(0, this.#pending - lines);
    if (this.#pending === 0) this.#ages.clear();
    else this.#ages.take(lines);
  }

  /** One warning per damaged line, in file order, naming where it is (to be looked at); the record it held is lost. */
  #reportDamage(batch: SpoolBatch, unreadable: readonly number[]): void {
    if (batch.damaged.length === 0 && unreadable.length === 0) return;
    const skipped = [
      ...batch.damaged.map((at) => ({ at, reason: 'no newline where a record should end: an append cut short by a crash, or garbage' })),
      ...unreadable.map((i) => ({ at: batch.at[i], reason: 'not an analytics record' })),
    ].sort((a, b) => a.at.segment - b.at.segment || a.at.offset - b.at.offset);
    for (const { at, reason } of skipped) {
      this.#logger.warn({ file: segmentPath(this.#settings.directory, at.segment), offset: at.offset, reason }, 'skipped a damaged analytics spool line');
    }
    this.#drop(skipped.length, 'damaged spool lines were skipped');
  }

  /** Counts and logs what the database refused; returns how many records it stored. */
  #dropRefused(outcome: StoreOutcome): number {
    for (const { id, message } of outcome.refused) {
      this.#logger.error({ err: { message }, id }, 'the database refused an analytics record');
      this.#drop(1, 'the database refused the record');
    }
    return outcome.stored;
  }

  /** A backlog line that names a stored response, told to #onBacklogResponse. */
  #backlogLine = (line: string): void => {
    // Only a stored response's creation record has the key (JSON.stringify leaves undefined fields out).
    if (!line.includes('"responseId"')) return;
    let row: AnalyticsRecordRow | undefined;
    try {
      row = recordRow(JSON.parse(line) as Parameters<typeof recordRow>[0]);
    } catch {
      // A damaged line: the batch that reaches it reports it.
      return;
    }
    if (row?.response_id) this.#onBacklogResponse!(row.response_id, row);
  };

  /**
   * How long ago a record an earlier process spooled finished: from its id's timestamp (a UUIDv7 made at
   * completion), the one wall-clock age the pipeline uses (it has nothing else from that process).
   */
  #ageOf(line: string): number {
    let id: unknown;
    try {
      id = (JSON.parse(line) as { id?: unknown }).id;
    } catch {
      id = undefined;
    }
    const t = typeof id === 'string' ? recordIdTime(id) : NaN;
    return Number.isFinite(t) && t > 0 ? Date.now() - t : 0;
  }

  /**
   * Another process took the directory over: this one's lock went unrefreshed past its grace (an event loop or a
   * disk stalled that long). Nothing more is appended here: records wait in memory and go straight to the database
   * (as while the spool cannot be written) until this process restarts.
   */
  #directoryTaken = (owner: string): void => {
    this.#taken = true;
    this.#spoolFailing = true;
    this.#spool?.close();
    this.#logger.error({ directory: this.#settings.directory, owner }, 'the analytics directory was taken over by another process; records go straight to the database until this one restarts');
  };

  #deletionFailed = (err: unknown): void => {
    this.#fileTrouble('deletion', { err, diskBytes: this.#spool?.diskBytes }, 'cannot delete stored analytics segments; retried after the next batch');
  };

  #checkpointFailed = (err: unknown): void => {
    this.#fileTrouble('checkpoint', { err }, 'cannot write the analytics checkpoint; a restart would store some records again (the database skips them)');
  };

  /** At most one warning a minute for each: a directory that refuses deletes or writes would otherwise log after every batch. */
  #fileTrouble(what: FileTrouble, fields: object, msg: string): void {
    const now = performance.now();
    if (now - this.#fileWarnedAt[what] < FILE_TROUBLE_LOG_INTERVAL_MS) return;
    this.#fileWarnedAt[what] = now;
    this.#logger.warn(fields, msg);
  }

  #drop(n: number, reason: string): void {
    this.#counts.dropped += n;
    this.#unloggedDrops += n;
    const now = performance.now();
    if (now - this.#dropLoggedAt >= DROP_LOG_INTERVAL_MS) this.#logDrops(reason, now);
  }

  #logDrops(reason = 'see earlier messages', now = performance.now()): void {
    if (this.#unloggedDrops === 0) return;
    this.#logger.error(
      { dropped: this.#unloggedDrops, reason, err: this.#spool?.lastError, diskBytes: this.#spool?.diskBytes, maxDiskBytes: this.#settings.maxDiskBytes },
      'analytics records dropped',
    );
    this.#unloggedDrops = 0;
    this.#dropLoggedAt = now;
  }

  /** Between batches: report drops, seal a quiet segment, make written segments durable against power loss. */
  #maintain(): void {
    const spool = this.#spool;
    if (this.#closed) return;
    this.#logDrops();
    if (!spool) return;
    if (!this.#taken && spool.activeSize > 0 && spool.activeAgeMs >= SEGMENT_MAX_AGE_MS) spool.rotate();
    for (const segment of spool.takeUnsynced()) void this.#sync(segment);
  }

  async #sync(segment: number): Promise<void> {
    try {
      const fh = await open(segmentPath(this.#settings.directory, segment), 'r');
      try {
        await fh.datasync();
      } finally {
        await fh.close();
      }
    } catch (err) {
      // Deleted meanwhile (already stored) is fine. Otherwise the records are still read back from the page cache and
      // stored; what is lost is their safety from a power loss until then, which an operator should hear about.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      this.#syncErrors++;
      this.#logger.error({ err, file: segmentPath(this.#settings.directory, segment) }, 'cannot fdatasync an analytics segment; its records are not safe from a power loss until stored');
    }
  }

  /**
   * Kept in #retaining so close() gives a DELETE under way its chance to end before the writer is closed. A pass that
   * fails (the database down, another process's lock held past writeTimeout) is tried again with the batches' backoff
   * rather than at the next hour's.
   */
  #retain(): void {
    clearTimeout(this.#retentionRetry);
    this.#retaining = this.applyRetention().then(
      (deleted) => {
        this.#retentionFailures = 0;
        if (deleted > 0) this.#logger.info({ deleted, retentionMs: this.#settings.retention }, 'deleted analytics records past retention');
      },
      (err) => {
        if (this.#closed) return;
        const retryMs = Math.round(backoffDelay(++this.#retentionFailures));
        if (this.#retentionFailures === 1 || this.#retentionFailures % 20 === 0) this.#logger.warn({ err, failures: this.#retentionFailures, retryMs }, 'analytics retention failed; retrying');
        this.#retentionRetry = setTimeout(() => this.#retain(), retryMs).unref();
      },
    );
  }
}
