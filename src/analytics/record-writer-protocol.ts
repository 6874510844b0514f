// Messages between the analytics pipeline and its writer thread (WorkerCalls numbers the `store` requests).
import type { StoreOutcome } from './store-lines.js';

export interface WriterWorkerData {
  url: string;
  schema?: string;
}

/** `batchSize`: rows per INSERT statement, sent with each batch so a settings reload applies to the next one. */
export type WriterRequest = { type: 'store'; text: string; batchSize: number } | { type: 'close' };

export type WriterAnswer = { type: 'stored'; seq: number; outcome: StoreOutcome } | { type: 'failed'; seq: number; message: string; code?: string };

/** A pino line from the thread's database connection (pool errors), logged by the main thread's logger. */
export type WriterLog = { type: 'log'; line: string };
