// The analytics writer thread: its own connection to the gateway's database, storing the batches of spool lines
// the pipeline sends, one at a time and in order.
import { pino } from 'pino';
import { parentPort, workerData } from 'node:worker_threads';
import type { Kysely } from 'kysely';
import { AnalyticsRecords, parseDatabaseUrl, type Tables } from '../store/index.js';
import { openPostgres } from '../store/postgres-connection.js';
import { openSqlite } from '../store/sqlite-connection.js';
import type { Numbered } from '../lib/worker-calls.js';
import type { WriterAnswer, WriterLog, WriterRequest, WriterWorkerData } from './record-writer-protocol.js';
import { storeLines } from './store-lines.js';

const port = parentPort!;
const data = workerData as WriterWorkerData;
const post = (message: WriterAnswer | WriterLog): void => port.postMessage(message);
const logger = pino({ level: 'warn', base: undefined, timestamp: false }, { write: (line: string) => post({ type: 'log', line }) });

let connection: { kysely: Kysely<Tables>; records: AnalyticsRecords } | undefined;

/** Opened at the first batch: the main thread has migrated the database by then. */
function open(): AnalyticsRecords {
  if (connection) return connection.records;
  const target = parseDatabaseUrl(data.url);
  const kysely = target.dialect === 'sqlite' ? openSqlite(target.file) : openPostgres({ url: target.url, schema: data.schema, poolSize: 1 }, logger);
  connection = { kysely, records: new AnalyticsRecords({ dialect: target.dialect, kysely }) };
  return connection.records;
}

async function store(seq: number, text: string, batchSize: number): Promise<void> {
  try {
    post({ type: 'stored', seq, outcome: await storeLines(open(), text.split('\n'), { batchSize, onEventLoop: false }) });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    post({ type: 'failed', seq, message: err instanceof Error ? err.message : String(err), code: typeof code === 'string' ? code : undefined });
  }
}

let chain = Promise.resolve();
// Store requests come numbered by WorkerCalls; close does not (nothing answers it: the thread exits).
port.on('message', (request: Numbered<Extract<WriterRequest, { type: 'store' }>> | Extract<WriterRequest, { type: 'close' }>) => {
  if (request.type === 'store') chain = chain.then(() => store(request.seq, request.text, request.batchSize));
  else chain = chain.then(async () => {
    await connection?.kysely.destroy();
    port.close();
  });
});
