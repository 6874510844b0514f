// The analytics writer thread: its own connection to the gateway's database, storing the batches of spool lines
// the pipeline sends and deleting records past retention, one request at a time and in order.
import { pino } from 'pino';
import { parentPort, workerData } from 'node:worker_threads';
import type { Kysely } from 'kysely';
import { AnalyticsRecords, parseDatabaseUrl, type Tables } from '../store/index.js';
import { openPostgres } from '../store/postgres-connection.js';
import { openSqlite } from '../store/sqlite-connection.js';
import type { Numbered } from '../lib/worker-calls.js';
import type { WriterAnswer, WriterNotice, WriterRequest, WriterWorkerData } from './record-writer-protocol.js';
import { storeLines } from './store-lines.js';

const port = parentPort!;
const data = workerData as WriterWorkerData;
const post = (message: WriterAnswer | WriterNotice): void => port.postMessage(message);
const logger = pino({ level: 'warn', base: undefined, timestamp: false }, { write: (line: string) => post({ type: 'log', line }) });

let connection: { kysely: Kysely<Tables>; records: AnalyticsRecords } | undefined;

/** Opened at the first call: the main thread has migrated the database by then. */
function open(): AnalyticsRecords {
  if (connection) return connection.records;
  const target = parseDatabaseUrl(data.url);
  const kysely = target.dialect === 'sqlite' ? openSqlite(target.file) : openPostgres({ url: target.url, schema: data.schema ?? target.schema, poolSize: 1 }, logger);
  connection = { kysely, records: new AnalyticsRecords({ dialect: target.dialect, kysely }) };
  return connection.records;
}

/** Posts the answer `work` makes to call `seq`, or its failure. */
async function answer(seq: number, work: () => Promise<WriterAnswer>): Promise<void> {
  try {
    post(await work());
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    post({ type: 'failed', seq, message: err instanceof Error ? err.message : String(err), code: typeof code === 'string' ? code : undefined });
  }
}

type Call = Numbered<Exclude<WriterRequest, { type: 'close' }>>;

function run(request: Call): Promise<void> {
  const { seq } = request;
  if (request.type === 'store') {
    return answer(seq, async () => ({ type: 'stored', seq, outcome: await storeLines(open(), request.text, { batchSize: request.batchSize, onEventLoop: false }) }));
  }
  // Here, off the event loop: on SQLite, a DELETE waiting for another process's write lock waits its busy timeout.
  return answer(seq, async () => ({ type: 'retained', seq, ...(await open().deleteChunkBefore(request.beforeMs)) }));
}

let chain = Promise.resolve();
// Calls come numbered by WorkerCalls; close does not (nothing answers it: the thread exits).
port.on('message', (request: Call | Extract<WriterRequest, { type: 'close' }>) => {
  if (request.type !== 'close') chain = chain.then(() => run(request));
  else chain = chain.then(async () => {
    await connection?.kysely.destroy();
    port.close();
  });
});
post({ type: 'ready' });
