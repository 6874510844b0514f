import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clientConfig, KEEPALIVE_IDLE_MS, loadPg } from './postgres-connection.js';

const DATABASE_URL = process.env.DATABASE_URL;

test('every PostgreSQL connection probes for a silent peer (TCP keepalive), and connects with it', { skip: DATABASE_URL ? false : 'DATABASE_URL is not set' }, async () => {
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
