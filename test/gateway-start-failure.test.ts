// startGateway when a listener cannot open (its port is taken): it rejects and closes everything it had opened
// before — the database, the Redis connections, the analytics writer thread and spool lock, the listeners already
// open — so an embedder's process is left as it was and the same options work once the port is free.
// own process: it compares the process's open handles before and after.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, type GatewayOptions } from '../src/gateway/gateway.js';
import { ListenError } from '../src/gateway/listen.js';
import { waitFor } from '../src/sim/testing.js';
import { poolAndModel } from './helpers/manifests.js';

const REDIS_URL = process.env.REDIS_URL;
const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

function holdPort(): Promise<Server> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

/** What keeps the event loop alive (listeners, sockets, timers), as a sorted list to compare; file reads in flight come and go. */
function openResources(): string[] {
  return process
    .getActiveResourcesInfo()
    .filter((r) => !r.startsWith('FSReq'))
    .sort();
}

function workerThreads(): number {
  return (process.report.getReport() as unknown as { workers: unknown[] }).workers.length;
}

const LISTENERS = [
  { name: 'data plane', option: 'port' },
  { name: 'admin', option: 'adminPort' },
  { name: 'ext_proc', option: 'extprocPort' },
] as const;

describe('startGateway with a port that is taken', () => {
  // Taken before any gateway starts: a gateway closed by an earlier test may still be finishing its sockets' close.
  const baseline = openResources();
  for (const { name, option } of LISTENERS) {
    test(`the ${name} port: rejects naming the port, leaves nothing open, and the same options start once it is free`, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'tollgate-start-failure-'));
      dirs.push(dir);
      const taken = await holdPort();
      const port = (taken.address() as { port: number }).port;
      // A database file gets a writer thread of its own; Redis (when the test has one) a connection pair.
      const options: GatewayOptions = {
        configPaths: [],
        manifests: poolAndModel(['http://127.0.0.1:9']),
        host: '127.0.0.1',
        port: 0,
        adminPort: 0,
        extprocPort: 0,
        watch: false,
        db: `sqlite:${join(dir, 't.db')}`,
        analyticsDir: join(dir, 'analytics'),
        redis: REDIS_URL,
        redisKeyPrefix: `tollgate:test:start-failure:${process.pid}:`,
        [option]: port,
      };
      const expected = [...baseline, 'TCPServerWrap'].sort();
      // tsx's module loader runs on a thread of its own.
      const threadsBefore = workerThreads();
      try {
        await assert.rejects(startGateway(options), (err: unknown) => {
          assert.ok(err instanceof ListenError, String(err));
          assert.deepEqual([err.listener, err.host, err.port, err.code], [name, '127.0.0.1', port, 'EADDRINUSE']);
          assert.equal(err.message, `the ${name} listener cannot open 127.0.0.1:${port}: the address is already in use`);
          return true;
        });
        // Closing a listener or a socket finishes a turn or two after close() returns.
        await waitFor(() => openResources().join() === expected.join(), 3000, 'nothing left open').catch(() => assert.deepEqual(openResources(), expected));
      } finally {
        await new Promise((r) => taken.close(r));
      }
      // The analytics spool's lock was released: the same options start a gateway once the port is free.
      const gateway = await startGateway({ ...options, [option]: 0 });
      await gateway.close();
      // Counted last: a writer thread the failed start left running (it is only counted once up) is up by now.
      assert.equal(workerThreads(), threadsBefore, 'no analytics writer thread is left');
    });
  }
});
