// Messages between the analytics pipeline and its writer thread (WorkerCalls numbers the `store` and `retain` requests).
import type { DeletedChunk } from '../store/analytics-records.js';
import type { StoreOutcome } from './store-lines.js';

export interface WriterWorkerData {
  url: string;
  schema?: string;
}

/**
 * `batchSize`: rows per INSERT statement, sent with each batch so a settings reload applies to the next one.
 * `retain`: one chunk of retention (records older than `beforeMs`), so batches are stored between chunks.
 */
export type WriterRequest = { type: 'store'; text: string; batchSize: number } | { type: 'retain'; beforeMs: number } | { type: 'close' };

export type StoredAnswer = { type: 'stored'; seq: number; outcome: StoreOutcome };
export type RetainedAnswer = { type: 'retained'; seq: number } & DeletedChunk;
export type WriterAnswer = StoredAnswer | RetainedAnswer | { type: 'failed'; seq: number; message: string; code?: string };

/**
 * Messages that answer no call: a pino line from the thread's database connection (pool errors), logged by the main
 * thread's logger; and `ready`, once the thread has loaded its modules and takes requests.
 */
export type WriterNotice = { type: 'log'; line: string } | { type: 'ready' };
