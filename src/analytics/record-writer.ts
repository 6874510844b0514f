// Where spooled records are stored from: a worker thread with its own database connection (a file or PostgreSQL
// database), so parsing and inserting never occupy the event loop that serves requests; or the event loop itself
// for an in-memory SQLite database, which no other thread can open.
import type { Logger } from '../lib/logger.js';
import { spawnWorker } from '../lib/spawn-worker.js';
import { AnalyticsRecords, isMemoryDatabase, type Database } from '../store/index.js';
import { storeLines, type StoreOutcome } from './store-lines.js';
import type { WriterReply, WriterRequest, WriterWorkerData } from './record-writer-protocol.js';

export interface RecordWriter {
  /** Stores spool lines, idempotently by record id; rejects when the database cannot be reached (retry later). */
  store(lines: readonly string[]): Promise<StoreOutcome>;
  close(): Promise<void>;
}

export interface RecordWriterOptions {
  db: Database;
  /** The URL `db` was opened with; an in-memory or absent one keeps the writer on the event loop. */
  databaseUrl?: string;
  databaseSchema?: string;
  batchSize: number;
  logger: Logger;
}

export function openRecordWriter(opts: RecordWriterOptions): RecordWriter {
  const url = opts.databaseUrl;
  if (url === undefined || isMemoryDatabase(url)) {
    const records = new AnalyticsRecords(opts.db);
    return { store: (lines) => storeLines(records, lines, { batchSize: opts.batchSize, onEventLoop: true }), close: async () => {} };
  }
  return new WorkerRecordWriter({ url, schema: opts.databaseSchema, batchSize: opts.batchSize }, opts.logger);
}

/** How long close() lets the writer thread finish its batch and close its connection before terminating it. */
const CLOSE_WAIT_MS = 5000;

interface Waiting {
  resolve(outcome: StoreOutcome): void;
  reject(err: Error): void;
}

class WorkerRecordWriter implements RecordWriter {
  readonly #data: WriterWorkerData;
  readonly #logger: Logger;
  readonly #waiting = new Map<number, Waiting>();
  #worker: ReturnType<typeof spawnWorker> | undefined;
  #seq = 0;

  constructor(data: WriterWorkerData, logger: Logger) {
    this.#data = data;
    this.#logger = logger;
    this.#spawn();
  }

  store(lines: readonly string[]): Promise<StoreOutcome> {
    const worker = this.#worker ?? this.#spawn();
    const seq = ++this.#seq;
    return new Promise((resolve, reject) => {
      this.#waiting.set(seq, { resolve, reject });
      // One string crosses the thread boundary as one copy; an array would be cloned string by string.
      worker.postMessage({ type: 'store', seq, text: lines.join('\n') } satisfies WriterRequest);
    });
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    if (!worker) return;
    this.#worker = undefined;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage({ type: 'close' } satisfies WriterRequest);
    const timer = setTimeout(() => void worker.terminate(), CLOSE_WAIT_MS);
    await exited;
    clearTimeout(timer);
  }

  #spawn(): ReturnType<typeof spawnWorker> {
    const worker = spawnWorker(import.meta.url, 'record-writer-worker', { workerData: this.#data });
    worker.on('message', (reply: WriterReply) => this.#reply(reply));
    worker.on('error', (err) => this.#logger.error({ err }, 'the analytics writer thread failed; it restarts with the next batch'));
    worker.on('exit', () => {
      if (this.#worker === worker) this.#worker = undefined;
      // Batches it had not answered are retried from the spool, like any failed insert.
      for (const waiting of this.#waiting.values()) waiting.reject(new Error('the analytics writer thread exited'));
      this.#waiting.clear();
    });
    // The pipeline closes it; a forgotten writer must not keep the process alive. After the listeners: adding a
    // 'message' listener refs the worker's port again.
    worker.unref();
    this.#worker = worker;
    return worker;
  }

  #reply(reply: WriterReply): void {
    if (reply.type === 'log') {
      const { level, msg, ...fields } = JSON.parse(reply.line) as { level: number; msg?: string };
      this.#logger[level >= 50 ? 'error' : 'warn']({ ...fields, thread: 'analytics-writer' }, msg ?? '');
      return;
    }
    const waiting = this.#waiting.get(reply.seq);
    if (!waiting) return;
    this.#waiting.delete(reply.seq);
    if (reply.type === 'stored') waiting.resolve(reply.outcome);
    else waiting.reject(Object.assign(new Error(reply.message), { code: reply.code }));
  }
}
