// Prepared statements kept by SQL text for kysely's SQLite dialect, which otherwise prepares every query anew:
// parsing a 500-row analytics insert (13,000 placeholders) cost more than running it.
import type SqliteDatabase from 'better-sqlite3';
import type { SqliteDatabase as DialectDatabase, SqliteStatement } from 'kysely';

/** What the dialect calls `database`: better-sqlite3 with the `max` most recently used statements kept prepared. */
export function withStatementCache(db: SqliteDatabase.Database, max: number): DialectDatabase {
  const cache = new Map<string, SqliteDatabase.Statement>();
  return {
    close: () => db.close(),
    prepare(sql: string): SqliteStatement {
      const hit = cache.get(sql);
      // A statement still iterating a result (a streamed query) cannot run again until it finishes.
      if (hit && !hit.busy) {
        cache.delete(sql);
        cache.set(sql, hit);
        return hit;
      }
      const statement = db.prepare(sql);
      if (!hit) {
        if (cache.size >= max) cache.delete(cache.keys().next().value!);
        cache.set(sql, statement);
      }
      return statement;
    },
  };
}
