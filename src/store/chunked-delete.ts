// Deleting any number of rows a chunk at a time: each statement holds its locks briefly (and on PostgreSQL stays
// within the store's statement deadline) however many rows match, and on SQLite, whose statements run on the event
// loop (better-sqlite3), requests are served between chunks rather than after the whole delete.
import { setImmediate as loopTurn } from 'node:timers/promises';
import type { DeleteResult } from 'kysely';
import type { DialectName } from './database-url.js';

/** One chunk of a delete: how many rows it deleted, and whether more may be left. */
export interface DeletedChunk {
  deleted: number;
  more: boolean;
}

/** Rows per DELETE. */
const DELETE_CHUNK = 5000;
/**
 * Rows per DELETE on SQLite: about 1.5 ms each on a file (3.4 µs a row), where 1.5 million expired analytics records in
 * chunks of 5,000 back to back once held every request for 3.7 s (on the event loop, or waiting for the write lock).
 * A table with more indexes costs more a row (access tokens: about 17 µs), still well under a tick.
 */
const SQLITE_DELETE_CHUNK = 500;

/** How many rows one DELETE of `dialect` takes at most. */
export function deleteChunkRows(dialect: DialectName): number {
  return dialect === 'sqlite' ? SQLITE_DELETE_CHUNK : DELETE_CHUNK;
}

/**
 * Runs the delete `build` makes for at most `limit` rows (a `where key in (select key ... limit)`: neither dialect
 * takes a LIMIT on DELETE itself).
 */
export async function deleteChunk(dialect: DialectName, build: (limit: number) => { executeTakeFirst(): Promise<DeleteResult> }): Promise<DeletedChunk> {
  const limit = deleteChunkRows(dialect);
  const deleted = Number((await build(limit).executeTakeFirst()).numDeletedRows);
  return { deleted, more: deleted === limit };
}

/**
 * Runs `next` until it reports nothing more is left, or `stop` says to give up; returns the rows deleted. Each chunk
 * waits for an event-loop turn, the first too, so a caller on a request's path answers before any of it runs.
 */
export async function deleteInChunks(next: () => Promise<DeletedChunk>, stop: () => boolean = () => false): Promise<number> {
  let total = 0;
  for (;;) {
    await loopTurn();
    const { deleted, more } = await next();
    total += deleted;
    if (!more || stop()) return total;
  }
}
