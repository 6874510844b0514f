// Storing a batch of spool lines: parse, insert idempotently, and isolate rows the database refuses. Runs in the
// analytics writer thread, or on the event loop for an in-memory database that no other thread can open.
import type { AnalyticsRecordRow, AnalyticsRecords } from '../store/index.js';
import { recordRow } from './record.js';

export interface StoreOutcome {
  stored: number;
  /** Where in the batch the lines that do not parse as a record are (a damaged spool): dropped. */
  unreadable: number[];
  /** Records the database refused as data (retrying cannot help): dropped. */
  refused: { id: string; message: string }[];
}

/** PostgreSQL SQLSTATE classes 22 (data exception) and 23 (constraint), SQLite's equivalents: retrying cannot help. */
function refusesData(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string') return false;
  if (/^2[23][0-9A-Z]{3}$/.test(code)) return true;
  return code.startsWith('SQLITE_CONSTRAINT') || code === 'SQLITE_MISMATCH' || code === 'SQLITE_TOOBIG';
}

function parseLines(text: string): { rows: AnalyticsRecordRow[]; unreadable: number[] } {
  const rows: AnalyticsRecordRow[] = [];
  const unreadable: number[] = [];
  text.split('\n').forEach((line, i) => {
    let row: AnalyticsRecordRow | undefined;
    try {
      row = recordRow(JSON.parse(line));
    } catch {
      row = undefined;
    }
    if (row) rows.push(row);
    else unreadable.push(i);
  });
  return { rows, unreadable };
}

/**
 * Stores spool lines joined by newlines (`unreadable` numbers them from 0). An unreachable or slow database throws,
 * and the caller retries the batch later. A database that refuses the data itself would refuse it forever, so the
 * batch is split and only the refused rows are dropped (and reported).
 */
export async function storeLines(records: AnalyticsRecords, text: string, insert: InsertOptions): Promise<StoreOutcome> {
  const { rows, unreadable } = parseLines(text);
  const outcome: StoreOutcome = { stored: 0, unreadable, refused: [] };
  await insertRows(records, rows, insert, outcome);
  return outcome;
}

/** The pipeline's batch size, and whether the inserts share the event loop with requests (see AnalyticsRecords.insert). */
export interface InsertOptions {
  batchSize: number;
  onEventLoop: boolean;
}

async function insertRows(records: AnalyticsRecords, rows: AnalyticsRecordRow[], insert: InsertOptions, outcome: StoreOutcome): Promise<void> {
  if (rows.length === 0) return;
  try {
    await records.insert(rows, insert.batchSize, insert);
    outcome.stored += rows.length;
  } catch (err) {
    if (!refusesData(err)) throw err;
    if (rows.length === 1) {
      outcome.refused.push({ id: rows[0].id, message: err instanceof Error ? err.message : String(err) });
      return;
    }
    for (const row of rows) await insertRows(records, [row], insert, outcome);
  }
}
