// Helpers for analytics tests: sample records, a fresh spool directory, a logger that keeps what it logs, a locked records table.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { sql } from 'kysely';
import { pino } from 'pino';
import type { Logger } from '../lib/logger.js';
import { AnalyticsRecords, type Database } from '../store/index.js';
import type { DatabaseBackend, TestDatabase } from '../store/test-databases.js';
import { newRecordId } from './record-id.js';
import type { AnalyticsRecord } from './record.js';
import { analyticsSettingsSpec, type AnalyticsSettings } from './settings.js';

/** A complete record; `i` makes the request id `req-<i>`. */
export function sampleRecord(i: number, overrides: Partial<AnalyticsRecord> = {}): AnalyticsRecord {
  const time = overrides.time ?? Date.now();
  return {
    id: newRecordId(time),
    time,
    requestId: `req-${i}`,
    developerId: 'dev-1',
    developerEmail: 'alice@example.com',
    appId: 'app-1',
    appName: 'chatbot',
    product: 'gold',
    operationSet: 'chat',
    keyId: 'key-1',
    operation: 'chat.completions',
    model: 'llama',
    targetModel: 'llama-8b',
    endpoint: '127.0.0.1:8000',
    priority: 0,
    status: 200,
    latencyMs: 100,
    ttftMs: 20,
    inputTokens: 10,
    outputTokens: 5,
    cachedTokens: 0,
    tokensEstimated: false,
    cacheHit: false,
    stream: false,
    bytesIn: 300,
    bytesOut: 700,
    ...overrides,
  };
}

const tempRoots: string[] = [];

/** A spool directory path (not yet created) under a fresh temp directory, removed when the test process exits. */
export function tempSpoolDirectory(): string {
  if (tempRoots.length === 0) process.once('exit', () => tempRoots.forEach((root) => rmSync(root, { recursive: true, force: true })));
  const root = mkdtempSync(join(tmpdir(), 'tollgate-analytics-'));
  tempRoots.push(root);
  return join(root, 'spool');
}

/** Settings for tests: a fast flush; everything else from the schema's defaults. */
export function testSettings(directory: string, overrides: Record<string, unknown> = {}): AnalyticsSettings {
  return analyticsSettingsSpec.parse({ directory, flushInterval: '10ms', ...overrides });
}

export interface CapturedLogger {
  logger: Logger;
  lines: { level: number; msg: string; [key: string]: unknown }[];
}

export function capturingLogger(): CapturedLogger {
  const lines: CapturedLogger['lines'] = [];
  const logger = pino({ level: 'debug', base: undefined }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger, lines };
}

/** A database of one backend for the tests of a describe block: opened before them (with the analytics table), closed and dropped after. */
export interface RecordsDatabase {
  target: TestDatabase;
  db: Database;
  records: AnalyticsRecords;
}

/** Call inside a describe: its before/after hooks fill and empty the answer. */
export function useRecordsDatabase(backend: DatabaseBackend): RecordsDatabase {
  const env = {} as RecordsDatabase;
  before(async () => {
    env.target = await backend.create();
    env.db = await env.target.open({ listen: false });
    env.records = new AnalyticsRecords(env.db);
  });
  after(async () => {
    await env.db?.close();
    await env.target?.dispose();
  });
  return env;
}

/** The request numbers stored for `tag` (request ids `<tag>-<i>`), sorted, duplicates kept: each test reads only its own rows of the shared database. */
export async function storedNumbers(records: AnalyticsRecords, tag: string): Promise<number[]> {
  const rows = await records.kysely.selectFrom('analytics_records').select('request_id').where('request_id', 'like', `${tag}-%`).execute();
  return rows.map((r) => Number(r.request_id.slice(tag.length + 1))).sort((a, b) => a - b);
}

/** from, from + 1, ..., to - 1. */
export const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

/**
 * Locks analytics_records (PostgreSQL) in a transaction of `db`, so that every query of it waits: for at most
 * `maxMs`, since a query nothing stops would wait for good. Resolves once locked, with the function that unlocks.
 */
export async function lockRecordsTable(db: Database, maxMs: number): Promise<() => Promise<void>> {
  let release!: () => void;
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => (locked = resolve));
  const holding = db.kysely.transaction().execute(async (trx) => {
    await sql`lock table analytics_records in access exclusive mode`.execute(trx);
    locked();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, maxMs);
      release = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  });
  await Promise.race([isLocked, holding]);
  return async () => {
    release();
    await holding;
  };
}
