// The gateway's PostgreSQL semantic cache on a connection gone silent (through a TCP proxy): the lookup is a miss at
// once, and the connection is ended once its statement has gone unanswered for the store's statement deadline, as
// the store's own are. The proxy keeps answering TCP keepalive, as a NAT that dropped the flow upstream can.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { Registry } from 'prom-client';
import { ApiManagement } from '../src/apim/api-management.js';
import { silentLogger } from '../src/lib/logger.js';
import type { PolicyDeps } from '../src/policy/types.js';
import { CacheStoreUnavailableError } from '../src/store/caches/cache-store.js';
import { STATEMENT_DEADLINE_MS } from '../src/store/postgres-connection.js';
import { DATABASE_BACKENDS } from '../src/store/test-databases.js';
import { TcpProxy } from '../src/store/test-tcp-proxy.js';
import { normalize } from '../src/store/vectors/vector-index.js';
import { until } from './helpers/apim-admin.js';

const postgres = DATABASE_BACKENDS.find((b) => b.name === 'postgres')!;

describe('PostgreSQL semantic cache connection gone silent', { skip: postgres.skip, timeout: 30_000 }, () => {
  test('the lookup is a miss, and the gateway ends the connection within the statement deadline', async () => {
    const target = await postgres.create();
    const direct = await target.open({ listen: false });
    const proxy = await TcpProxy.for(target.url, 5432);
    const apim = await ApiManagement.open({ db: proxy.proxied(target.url), dbSchema: target.schema, logger: silentLogger, registry: new Registry() }, []);
    try {
      const index = apim.caches.vectorIndex({ policy: 'lookup', flow: {} as PolicyDeps }, 'answers', 'postgres', { maxEntriesPerScope: 10, embeddingsModel: 'e' });
      const east = normalize([1, 0, 0, 0]);
      await index.add('s', 'k', east, Buffer.from('answer'), 60_000);
      // The pool hands out its most recently released connection: this one, then to the lookup.
      const { pid } = (await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(apim.db.kysely)).rows[0];
      const silenced = proxy.silenceOn('tollgate_semantic_cache');
      await assert.rejects(Promise.resolve(index.search('s', east, 0.5)), CacheStoreUnavailableError);
      await silenced;
      const alive = async () => (await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ${pid}`.execute(direct.kysely)).rows[0].n;
      // Before: the caches had the builder without deadline, and the connection stayed open and checked out for good.
      await until(alive, (n) => n === 0, STATEMENT_DEADLINE_MS + 3000, 'the silent connection ended', 100);
    } finally {
      await proxy.close();
      await apim.close();
      await direct.close();
      await target.dispose();
    }
  });
});
