// Where spooled records are stored from: a worker thread with its own database connection (a file or PostgreSQL
// database), so parsing and inserting never occupy the event loop that serves requests; or the event loop itself
// for an in-memory SQLite database, which no other thread can open.
import type { Logger } from '../lib/logger.js';
import { spawnWorker } from '../lib/spawn-worker.js';
import { WorkerCalls } from '../lib/worker-calls.js';
import { AnalyticsRecords, isMemoryDatabase, type Database } from '../store/index.js';
import { storeLines, type StoreOutcome } from './store-lines.js';
import type { WriterAnswer, WriterLog, WriterRequest, WriterWorkerData } from './record-writer-protocol.js';

export interface RecordWriter {
  /**
   * Stores spool lines, `batchSize` rows per INSERT, idempotently by record id; rejects when the database cannot be
   * reached (retry later).
   */
  store(lines: readonly string[], batchSize: number): Promise<StoreOutcome>;
  close(): Promise<void>;
}

export interface RecordWriterOptions {
  db: Database;
  /** The URL `db` was opened with; an in-memory or absent one keeps the writer on the event loop. */
  databaseUrl?: string;
  databaseSchema?: string;
  logger: Logger;
}

export function openRecordWriter(opts: RecordWriterOptions): RecordWriter {
  const url = opts.databaseUrl;
  if (url === undefined || isMemoryDatabase(url)) {
    const records = new AnalyticsRecords(opts.db);
    return { store: (lines, batchSize) => storeLines(records, lines, { batchSize, onEventLoop: true }), close: async () => {} };
  }
  return new WorkerRecordWriter({ url, schema: opts.databaseSchema }, opts.logger);
}

/** How long close() lets the writer thread finish its batch and close its connection before terminating it. */
const CLOSE_WAIT_MS = 5000;

class WorkerRecordWriter implements RecordWriter {
  readonly #data: WriterWorkerData;
  readonly #logger: Logger;
  #calls: WorkerCalls<WriterRequest, WriterAnswer> | undefined;

  constructor(data: WriterWorkerData, logger: Logger) {
    this.#data = data;
    this.#logger = logger;
    this.#calls = this.#spawn();
  }

  async store(lines: readonly string[], batchSize: number): Promise<StoreOutcome> {
    // A thread that exited failed its batches, which are retried from the spool like any failed insert; a new one
    // takes them.
    const calls = this.#calls && !this.#calls.exited ? this.#calls : (this.#calls = this.#spawn());
    // One string crosses the thread boundary as one copy; an array would be cloned string by string.
    const answer = await calls.call({ type: 'store', text: lines.join('\n'), batchSize });
    if (answer.type === 'failed') throw Object.assign(new Error(answer.message), { code: answer.code });
    return answer.outcome;
  }

  async close(): Promise<void> {
    const calls = this.#calls;
    this.#calls = undefined;
    await calls?.close({ type: 'close' }, CLOSE_WAIT_MS);
  }

  #spawn(): WorkerCalls<WriterRequest, WriterAnswer> {
    return new WorkerCalls(spawnWorker(import.meta.url, 'record-writer-worker', { workerData: this.#data }), {
      name: 'analytics writer',
      onMessage: (message) => this.#log(message as WriterLog),
      onError: (err) => this.#logger.error({ err }, 'the analytics writer thread failed; it restarts with the next batch'),
    });
  }

  /** Messages that answer no call: the thread's log lines (answers whose caller timed out are dropped). */
  #log(message: WriterLog): void {
    if (message.type !== 'log') return;
    const { level, msg, ...fields } = JSON.parse(message.line) as { level: number; msg?: string };
    this.#logger[level >= 50 ? 'error' : 'warn']({ ...fields, thread: 'analytics-writer' }, msg ?? '');
  }
}
