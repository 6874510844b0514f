// The stats query thread: its own read-only connection to the gateway's SQLite file (WAL lets it read while others
// write), running one query at a time.
import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { parentPort, workerData } from 'node:worker_threads';
import type { Numbered } from '../lib/worker-calls.js';
import { AnalyticsRecords, type Tables } from '../store/index.js';
import type { StatsAnswer, StatsRequest, StatsWorkerData } from './stats-runner-protocol.js';
import { runStats } from './stats-sql.js';
import type { StatsQuery } from './stats-query.js';

const port = parentPort!;
const data = workerData as StatsWorkerData;
/** As the gateway's own connection waits: a reader is only kept waiting while another connection recovers the WAL. */
const BUSY_TIMEOUT_MS = 5000;

let connection: { kysely: Kysely<Tables>; records: AnalyticsRecords } | undefined;

function open(): AnalyticsRecords {
  if (connection) return connection.records;
  const sqlite = new SqliteDatabase(data.file, { readonly: true, fileMustExist: true });
  sqlite.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  const kysely = new Kysely<Tables>({ dialect: new SqliteDialect({ database: sqlite }) });
  connection = { kysely, records: new AnalyticsRecords({ dialect: 'sqlite', kysely }) };
  return connection.records;
}

async function run(seq: number, query: StatsQuery): Promise<void> {
  let answer: StatsAnswer;
  try {
    answer = { type: 'done', seq, result: await runStats(open(), query) };
  } catch (err) {
    answer = { type: 'failed', seq, message: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(answer);
}

let chain = Promise.resolve();
// Run requests come numbered by WorkerCalls; close does not (nothing answers it: the thread exits).
port.on('message', (request: Numbered<Extract<StatsRequest, { type: 'run' }>> | Extract<StatsRequest, { type: 'close' }>) => {
  if (request.type === 'run') chain = chain.then(() => run(request.seq, request.query));
  else chain = chain.then(async () => {
    await connection?.kysely.destroy();
    port.close();
  });
});
