import { test } from 'node:test';
import assert from 'node:assert/strict';
import SqliteDatabase from 'better-sqlite3';
import { withStatementCache } from './sqlite-statement-cache.js';

function counted(): { db: SqliteDatabase.Database; prepared: string[] } {
  const db = new SqliteDatabase(':memory:');
  const prepared: string[] = [];
  const prepare = db.prepare.bind(db);
  db.prepare = ((sql: string) => (prepared.push(sql), prepare(sql))) as typeof db.prepare;
  return { db, prepared };
}

test('a repeated query is prepared once and gives the same answers', () => {
  const { db, prepared } = counted();
  const cached = withStatementCache(db, 4);
  cached.prepare('create table t (x integer)').run([]);
  for (let i = 0; i < 5; i++) cached.prepare('insert into t (x) values (?)').run([i]);
  assert.deepEqual(cached.prepare('select sum(x) as s from t').all([]), [{ s: 10 }]);
  assert.equal(prepared.filter((s) => s.startsWith('insert')).length, 1);
  cached.close();
});

test('the least recently used statement is dropped beyond the limit', () => {
  const { db, prepared } = counted();
  const cached = withStatementCache(db, 2);
  const q = (n: number) => cached.prepare(`select ${n} as n`).all([]);
  q(1);
  q(2);
  q(1); // 1 is now the most recent
  q(3); // drops 2
  q(1);
  q(2);
  assert.deepEqual(prepared, ['select 1 as n', 'select 2 as n', 'select 3 as n', 'select 2 as n']);
  cached.close();
});

test('a statement still iterating is not handed out again', () => {
  const { db } = counted();
  const cached = withStatementCache(db, 4);
  const sql = 'select value from json_each(?)';
  const rows = cached.prepare(sql).iterate(['[1,2,3]']);
  rows.next();
  // Would throw "This statement is busy executing a query" if the iterating statement were reused.
  assert.deepEqual(cached.prepare(sql).all(['[7]']), [{ value: 7 }]);
  rows.return?.();
  cached.close();
});
