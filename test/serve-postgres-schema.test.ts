// `tollgate serve --db postgres://...?schema=NAME`: the gateway's tables, its admin changes and its usage records
// (written by the analytics writer thread, which opens a connection of its own) live in that schema, and two gateways
// on one database in two schemas see nothing of each other. The driver knows no `schema` parameter: before, it was
// dropped silently and every gateway worked in `public`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { randomBase62 } from '../src/store/keys.js';
import { DatabaseConfigError } from '../src/store/errors.js';
import { openDatabase } from '../src/store/open-database.js';
import { waitFor } from '../src/sim/testing.js';
import { startStub, type Stub } from './helpers/stub-upstream.js';
import { poolAndModelYaml } from './helpers/manifests.js';
import { chat, freePorts, kill, refusal, runCli, send, START_MS, statusOf, tempDir, untilPrinted, type Cli } from './helpers/cli-run.js';

const DATABASE_URL = process.env.DATABASE_URL;
const skip = DATABASE_URL ? false : 'DATABASE_URL not set';

const schemas = [0, 1].map(() => `tg_url_schema_${randomBase62(8).toLowerCase()}`);
let client: pg.Client;
let stub: Stub;

before(async () => {
  if (!DATABASE_URL) return;
  client = new pg.Client({ connectionString: DATABASE_URL });
  await client.connect();
  stub = await startStub();
});

after(async () => {
  if (!DATABASE_URL) return;
  for (const s of schemas) await client.query(`drop schema if exists ${s} cascade`);
  await client.end();
  await stub.close();
});

function withSchema(url: string, schema: string): string {
  const u = new URL(url);
  u.searchParams.set('schema', schema);
  return u.href;
}

async function serve(schema: string): Promise<{ cli: Cli; port: number; admin: string }> {
  const dir = await tempDir();
  const file = join(dir, 'gateway.yaml');
  await writeFile(file, poolAndModelYaml(stub.url));
  const [port, adminPort] = await freePorts(2);
  const cli = runCli(['serve', '--config', file, '--port', String(port), '--admin-port', String(adminPort), '--db', withSchema(DATABASE_URL!, schema)], dir);
  await untilPrinted(cli, /tollgate is serving/, 'serve');
  return { cli, port, admin: `http://127.0.0.1:${adminPort}` };
}

const count = async (table: string, where = 'true', params: unknown[] = []) => Number((await client.query(`select count(*) as n from ${table} where ${where}`, params)).rows[0].n);

test('serve keeps its tables, admin changes and usage records in the schema the database URL names', { skip }, async () => {
  // Made first: where public holds tollgate's tables (other tests' gateways), a schema the URL names that does not
  // exist is refused (next test).
  for (const s of schemas) await client.query(`create schema ${s}`);
  const [a, b] = [await serve(schemas[0]), await serve(schemas[1])];
  try {
    const email = `schema-${randomBase62(6).toLowerCase()}@example.com`;
    const created = await send(`${a.admin}/v1/developers`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email }) });
    assert.equal(statusOf(created), 201, JSON.stringify(created));
    assert.equal(await count(`${schemas[0]}.developers`, 'email = $1', [email]), 1);
    // The other gateway, in its own schema, has no such developer; nor does public, which was used before.
    assert.equal(await count(`${schemas[1]}.developers`), 0);
    const publicDevelopers = await client.query(`select to_regclass('public.developers') as t`);
    if (publicDevelopers.rows[0].t !== null) assert.equal(await count('public.developers', 'email = $1', [email]), 0);
    const listed = await send(`${b.admin}/v1/developers`);
    assert.equal(statusOf(listed), 200);
    assert.deepEqual(JSON.parse((listed as { body: string }).body).items, []);

    // The writer thread stores the usage record through its own connection: into the same schema.
    assert.equal(statusOf(await send(`http://127.0.0.1:${a.port}/v1/chat/completions`, chat('m'))), 200);
    await waitFor(async () => (await count(`${schemas[0]}.analytics_records`)) === 1, START_MS, 'the usage record stored in the named schema', 50);
    assert.equal(await count(`${schemas[1]}.analytics_records`), 0);
  } finally {
    await Promise.all([kill(a.cli.child), kill(b.cli.child)]);
  }
});

// Every refused spelling is in database-url.test.ts; this is how serve reports one.
test('a schema in the database URL that is not a plain identifier is refused at start (exit 2)', { skip }, async () => {
  const dir = await tempDir();
  const file = join(dir, 'gateway.yaml');
  await writeFile(file, poolAndModelYaml(stub.url));
  const [port, adminPort] = await freePorts(2);
  const lines = await refusal(['serve', '--config', file, '--port', String(port), '--admin-port', String(adminPort), '--db', `${DATABASE_URL}?schema=Bad-Name`], dir);
  assert.match(lines.join('\n'), /invalid schema name "Bad-Name"/);
});

test("a new schema named beside a public that holds tollgate's tables is refused (earlier releases ignored ?schema=); created first, it is used", { skip }, async () => {
  // A database an earlier release used with `?schema=` in its URL: its tables are in public.
  const database = `tg_split_${randomBase62(8).toLowerCase()}`;
  await client.query(`create database ${database}`);
  const url = new URL(DATABASE_URL!);
  url.pathname = `/${database}`;
  try {
    const earlier = await openDatabase(url.href, { listen: false });
    await earlier.developers.create({ email: 'kept@example.com' });
    await earlier.close();
    const schema = 'tollgate_new';
    await assert.rejects(openDatabase(withSchema(url.href, schema), { listen: false }), (err: Error) => {
      assert.ok(err instanceof DatabaseConfigError, String(err));
      assert.match(err.message, /names schema "tollgate_new", which does not exist, while schema public holds tollgate's tables/);
      assert.match(err.message, /remove \?schema= from the URL/);
      return true;
    });
    const inDb = new pg.Client({ connectionString: url.href });
    await inDb.connect();
    try {
      assert.equal((await inDb.query(`select count(*) as n from pg_namespace where nspname = $1`, [schema])).rows[0].n, '0', 'the refusal created nothing');
      await inDb.query(`create schema ${schema}`);
    } finally {
      await inDb.end();
    }
    const fresh = await openDatabase(withSchema(url.href, schema), { listen: false });
    try {
      assert.deepEqual((await fresh.developers.list()).items, []);
    } finally {
      await fresh.close();
    }
  } finally {
    await client.query(`drop database if exists ${database} with (force)`);
  }
});

