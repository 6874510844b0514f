// Where spooled records are stored from (and retention deletes them): a worker thread with its own database
// connection (a file or PostgreSQL database), so parsing, inserting and waiting for the database never occupy the
// event loop that serves requests; or the event loop itself for an in-memory SQLite database, which no other thread
// can open.
import type { Logger } from '../lib/logger.js';
import { spawnWorker } from '../lib/spawn-worker.js';
import { TimeoutError, withTimeout } from '../lib/with-timeout.js';
import { WorkerCalls } from '../lib/worker-calls.js';
import { AnalyticsRecords, isMemoryDatabase, type Database } from '../store/index.js';
import type { DeletedChunk } from '../store/analytics-records.js';
import { storeLines, type StoreOutcome } from './store-lines.js';
import type { RetainedAnswer, StoredAnswer, WriterAnswer, WriterNotice, WriterRequest, WriterWorkerData } from './record-writer-protocol.js';

export interface RecordWriter {
  /**
   * Stores spool lines (joined by newlines), `batchSize` rows per INSERT, idempotently by record id; rejects when the
   * database cannot be reached, or with a TimeoutError when it has not answered within `timeoutMs` (retry later).
   */
  store(text: string, batchSize: number, timeoutMs: number): Promise<StoreOutcome>;
  /** Deletes one chunk of the records older than `beforeMs` (epoch ms); rejects as store() does. */
  deleteChunk(beforeMs: number, timeoutMs: number): Promise<DeletedChunk>;
  /** Lets what is under way finish and the connection close within `waitMs`, then cuts it. */
  close(waitMs: number): Promise<void>;
}

export interface RecordWriterOptions {
  db: Database;
  /** The URL `db` was opened with; an in-memory or absent one keeps the writer on the event loop. */
  databaseUrl?: string;
  databaseSchema?: string;
  logger: Logger;
}

const STORE = 'an analytics insert';
const RETAIN = 'an analytics retention delete';

/** A writer with a thread of its own starts it at its first call. */
export function openRecordWriter(opts: RecordWriterOptions): RecordWriter {
  const url = opts.databaseUrl;
  if (url === undefined || isMemoryDatabase(url)) {
    const records = new AnalyticsRecords(opts.db);
    // A late answer is dropped; a statement of the main pool that never answers holds one of its connections, not the writer.
    return {
      store: (text, batchSize, timeoutMs) => withTimeout(storeLines(records, text, { batchSize, onEventLoop: true }), timeoutMs, STORE),
      deleteChunk: (beforeMs, timeoutMs) => withTimeout(records.deleteChunkBefore(beforeMs), timeoutMs, RETAIN),
      close: async () => {},
    };
  }
  return new WorkerRecordWriter({ url, schema: opts.databaseSchema }, opts.logger);
}

/** How long a new writer thread may take to load its modules. */
const THREAD_START_MS = 30_000;

/** A writer thread, and whether it has loaded its modules (`ready` resolves then, or once it exits). */
interface WriterThread {
  calls: WorkerCalls<WriterRequest, WriterAnswer>;
  ready: Promise<void>;
}

class WorkerRecordWriter implements RecordWriter {
  readonly #data: WriterWorkerData;
  readonly #logger: Logger;
  #thread: WriterThread | undefined;
  #closed = false;

  constructor(data: WriterWorkerData, logger: Logger) {
    this.#data = data;
    this.#logger = logger;
  }

  async store(text: string, batchSize: number, timeoutMs: number): Promise<StoreOutcome> {
    // One string crosses the thread boundary as one copy; an array would be cloned string by string.
    const answer = (await this.#call({ type: 'store', text, batchSize }, timeoutMs, STORE)) as StoredAnswer;
    return answer.outcome;
  }

  async deleteChunk(beforeMs: number, timeoutMs: number): Promise<DeletedChunk> {
    const { deleted, more } = (await this.#call({ type: 'retain', beforeMs }, timeoutMs, RETAIN)) as RetainedAnswer;
    return { deleted, more };
  }

  async close(waitMs: number): Promise<void> {
    this.#closed = true;
    const thread = this.#thread;
    this.#thread = undefined;
    await thread?.calls.close({ type: 'close' }, waitMs);
  }

  /**
   * A call that has not answered within `timeoutMs` takes the thread down with it. Its one connection may be what
   * hangs (a NAT or proxy that dropped the flow keeps it silent for minutes), and every later call would queue behind
   * it, each holding its batch. The retry starts a new thread with a new connection; whatever the abandoned statement
   * still commits, the retry's INSERT skips (the record id is unique).
   */
  async #call(request: Exclude<WriterRequest, { type: 'close' }>, timeoutMs: number, what: string): Promise<WriterAnswer> {
    // A batch the pipeline was still shipping when it closed (held records, after the spool's last batch) started a
    // thread of its own, which nothing closed: an embedding process never exited. Its records stay in the spool.
    if (this.#closed) throw new Error(`${what} after the analytics writer closed`);
    // A thread that exited failed its calls, which are retried like any failed insert; a new one takes them.
    const thread = this.#thread && !this.#thread.calls.exited ? this.#thread : (this.#thread = this.#spawn());
    let answer: WriterAnswer;
    try {
      // The deadline is the database's: loading the thread's modules (a second or two from TypeScript sources) is not
      // counted, or a short writeTimeout would end every new thread before its first answer. The load has a bound of
      // its own, whose timer also keeps the process up meanwhile (the thread does not).
      await withTimeout(thread.ready, THREAD_START_MS, "the analytics writer thread's start");
      answer = await withTimeout(thread.calls.call(request), timeoutMs, what);
    } catch (err) {
      if (err instanceof TimeoutError && this.#thread === thread) {
        this.#thread = undefined;
        // No time to finish: what it would finish with is the hung statement.
        void thread.calls.close({ type: 'close' }, 0);
      }
      throw err;
    }
    if (answer.type === 'failed') throw Object.assign(new Error(answer.message), { code: answer.code });
    return answer;
  }

  #spawn(): WriterThread {
    const worker = spawnWorker(import.meta.url, 'record-writer-worker', { workerData: this.#data });
    let ready!: () => void;
    const thread: WriterThread = {
      calls: new WorkerCalls(worker, {
        name: 'analytics writer',
        onMessage: (message) => ((message as WriterNotice).type === 'ready' ? ready() : this.#log(message as WriterNotice)),
        onError: (err) => this.#logger.error({ err }, 'the analytics writer thread failed; it restarts with the next batch'),
      }),
      ready: new Promise((resolve) => (ready = resolve)),
    };
    // A thread that fails to load is ready too: calls to it then fail at once.
    worker.once('exit', () => ready());
    return thread;
  }

  /** Messages that answer no call but `ready`: the thread's log lines (answers whose caller timed out are dropped). */
  #log(message: WriterNotice): void {
    if (message.type !== 'log') return;
    const { level, msg, ...fields } = JSON.parse(message.line) as { level: number; msg?: string };
    this.#logger[level >= 50 ? 'error' : 'warn']({ ...fields, thread: 'analytics-writer' }, msg ?? '');
  }
}
