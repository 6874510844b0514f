import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { pino } from 'pino';
import { clientConfig, KEEPALIVE_IDLE_MS, loadPg, openPostgres } from './postgres-connection.js';
import { TcpProxy } from './test-tcp-proxy.js';

const DATABASE_URL = process.env.DATABASE_URL;
const needsPostgres = { skip: DATABASE_URL ? false : 'DATABASE_URL is not set' };

test('every PostgreSQL connection probes for a silent peer (TCP keepalive), and connects with it', needsPostgres, async () => {
  const config = clientConfig({ url: DATABASE_URL! }, 'tollgate-test');
  assert.equal(config.keepAlive, true);
  assert.equal(config.keepAliveInitialDelayMillis, KEEPALIVE_IDLE_MS);
  const client = new (loadPg().Client)(config);
  await client.connect();
  try {
    assert.equal((await client.query('select 1 as one')).rows[0].one, 1);
  } finally {
    await client.end();
  }
});

test('an idle connection that fails is logged by its message and code, not with the whole client', needsPostgres, async () => {
  const lines: Record<string, any>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const proxy = await TcpProxy.for(DATABASE_URL!, 5432);
  const db = openPostgres({ url: proxy.proxied(DATABASE_URL!), poolSize: 1 }, logger);
  try {
    await sql`select 1`.execute(db); // the connection is idle in the pool after this
    proxy.reset();
    for (let i = 0; i < 500 && !lines.some((l) => l.msg === 'idle PostgreSQL connection failed'); i++) await new Promise((r) => setTimeout(r, 10));
    const idle = lines.find((l) => l.msg === 'idle PostgreSQL connection failed');
    assert.ok(idle, 'the idle connection failure is logged');
    // pg-pool hangs the client on the error: before, each line carried it, the backend's cancel key included.
    for (const line of lines) assert.doesNotMatch(JSON.stringify(line), /secretKey|processID|connectionParameters/);
    assert.match(idle.error, /Connection terminated/);
    assert.equal(idle.err, undefined);
  } finally {
    await db.destroy();
    await proxy.close();
  }
});
