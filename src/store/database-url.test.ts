// Database URL parsing (table-driven) and the in-memory SQLite database tests and tools can use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkSchemaName, isMemoryDatabase, parseDatabaseUrl } from './database-url.js';
import { DatabaseConfigError } from './errors.js';
import { openDatabase } from './open-database.js';

const CASES: Array<[string, ReturnType<typeof parseDatabaseUrl> | 'error']> = [
  ['sqlite:./tollgate.db', { dialect: 'sqlite', file: './tollgate.db' }],
  ['sqlite:/var/lib/tollgate.db', { dialect: 'sqlite', file: '/var/lib/tollgate.db' }],
  ['sqlite:///var/lib/tollgate.db', { dialect: 'sqlite', file: '/var/lib/tollgate.db' }],
  ['sqlite::memory:', { dialect: 'sqlite', file: ':memory:' }],
  ['postgres://u@h:5432/db', { dialect: 'postgres', url: 'postgres://u@h:5432/db' }],
  ['postgresql://u@h/db', { dialect: 'postgres', url: 'postgresql://u@h/db' }],
  // The driver knows no `schema` parameter: tollgate takes it out of the URL it hands on, and works in that schema.
  ['postgres://u@h/db?schema=tenant_a', { dialect: 'postgres', url: 'postgres://u@h/db', schema: 'tenant_a' }],
  ['postgres://u@h/db?sslmode=require&schema=tenant_a&application_name=x', { dialect: 'postgres', url: 'postgres://u@h/db?sslmode=require&application_name=x', schema: 'tenant_a' }],
  ['postgres://u@h/db?schema=a%5Fb', { dialect: 'postgres', url: 'postgres://u@h/db', schema: 'a_b' }],
  ['postgres://u@h/db?sslmode=disable', { dialect: 'postgres', url: 'postgres://u@h/db?sslmode=disable' }],
  ['postgres://u@h/db?schema=Public', 'error'],
  ['postgres://u@h/db?schema=a;drop', 'error'],
  ['postgres://u@h/db?schema=', 'error'],
  ['postgres://u@h/db?schema', 'error'],
  ['postgres://u@h/db?schema=a&schema=b', 'error'],
  ['postgres://u@h/db?schema=%E0%A4%A', 'error'],
  ['sqlite:', 'error'],
  ['mysql://h/db', 'error'],
  ['./tollgate.db', 'error'],
];

for (const [url, expected] of CASES) {
  test(`parseDatabaseUrl(${JSON.stringify(url)})`, () => {
    if (expected === 'error') assert.throws(() => parseDatabaseUrl(url), DatabaseConfigError);
    else assert.deepEqual(parseDatabaseUrl(url), expected);
  });
}

test('the in-memory database, however spelt, and nothing else is in memory', () => {
  assert.equal(isMemoryDatabase('sqlite::memory:'), true);
  assert.equal(isMemoryDatabase('sqlite://:memory:'), true);
  for (const url of ['sqlite:./tollgate.db', 'sqlite:./memory.db', 'postgres://u@h/memory']) assert.equal(isMemoryDatabase(url), false, url);
});

test('schema names are plain identifiers', () => {
  assert.equal(checkSchemaName('test_abc1'), 'test_abc1');
  for (const bad of ['Test', '1abc', 'a-b', 'a;drop', 'x'.repeat(64)]) assert.throws(() => checkSchemaName(bad), DatabaseConfigError);
});

test('sqlite::memory: is a private, migrated database', async () => {
  const db = await openDatabase('sqlite::memory:');
  try {
    await db.developers.create({ email: 'mem@example.com' });
    assert.equal((await db.developers.list()).items.length, 1);
  } finally {
    await db.close();
  }
});
