// The LISTEN connection when it goes silent while being opened: after the handshake, before LISTEN answers (a NAT or
// partition dropping the flow in that window), through a TCP proxy in front of the shared server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RESOURCE_TYPES, type ChangeEvent } from './change-feed.js';
import type { Database } from './database.js';
import { DatabaseOpenError } from './errors.js';
import { openDatabase } from './open-database.js';
import { DATABASE_BACKENDS, type TestDatabase } from './test-databases.js';
import { TcpProxy } from './test-tcp-proxy.js';

const postgres = DATABASE_BACKENDS.find((b) => b.name === 'postgres')!;

/** Long enough that only a wait that never ends reaches it (a LISTEN is given up after 5 s). */
const HUNG_MS = 20_000;

async function waitFor(events: ChangeEvent[], match: (e: ChangeEvent) => boolean, what: string): Promise<void> {
  for (const deadline = Date.now() + HUNG_MS; !events.some(match); await new Promise((r) => setTimeout(r, 20))) {
    if (Date.now() > deadline) assert.fail(`no ${what}`);
  }
}

describe('PostgreSQL LISTEN connection silenced before LISTEN answers', { skip: postgres.skip }, () => {
  let target: TestDatabase;
  let writer: Database;
  let proxy: TcpProxy;

  before(async () => {
    target = await postgres.create();
    writer = await target.open({ listen: false });
    proxy = await TcpProxy.for(target.url, 5432);
  });
  after(async () => {
    await proxy?.close();
    await writer?.close();
    await target?.dispose();
  });

  test('a reconnect whose LISTEN goes unanswered is given up and retried, then reloads everything', async () => {
    const replica = await openDatabase(proxy.proxied(target.url), { schema: target.schema, listenHeartbeatMs: 500 });
    const events: ChangeEvent[] = [];
    const unsubscribe = replica.onChange((e) => events.push(e));
    try {
      const silenced = proxy.silenceOn('LISTEN');
      proxy.reset(); // the listener reconnects, and that connection's LISTEN goes silent
      await silenced;
      // Before the fix the reconnect waited on that LISTEN for good: no reload, no notification ever again.
      await waitFor(events, (e) => e.origin === 'remote' && e.resourceTypes.length === RESOURCE_TYPES.length, 'reload after the silenced reconnect');
      events.length = 0;
      await writer.developers.create({ email: 'after@example.com', firstName: 'a', lastName: 'b', userName: 'after' });
      await waitFor(events, (e) => e.origin === 'remote' && e.resourceTypes.includes('developer'), 'notification after the reconnect');
    } finally {
      unsubscribe();
      await replica.close();
    }
  });

  test('opening the database fails, naming LISTEN, rather than hanging when the first LISTEN goes unanswered', async () => {
    const silenced = proxy.silenceOn('LISTEN');
    const opening = openDatabase(proxy.proxied(target.url), { schema: target.schema, listenHeartbeatMs: 500 });
    await silenced;
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('openDatabase never settled')), HUNG_MS);
    });
    try {
      await assert.rejects(Promise.race([opening, hung]), (err: Error) => err instanceof DatabaseOpenError && /LISTEN/.test(err.message));
    } finally {
      clearTimeout(timer);
      proxy.reset(); // lets a hung open (before the fix) end, so the file can finish
      await opening.then((db) => db.close(), () => {});
    }
  });
});
