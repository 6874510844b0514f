// Messages between the stats route and its query thread (WorkerCalls numbers the `run` requests).
import type { StatsQuery } from './stats-query.js';
import type { StatsResult } from './stats-sql.js';

export interface StatsWorkerData {
  /** The SQLite database file, opened read-only by the thread. */
  file: string;
}

export type StatsRequest = { type: 'run'; query: StatsQuery } | { type: 'close' };

export type StatsAnswer = { type: 'done'; seq: number; result: StatsResult } | { type: 'failed'; seq: number; message: string };
