// Deleting a key, an app or a developer whose keys hold many OAuth access tokens, through the admin API on every
// backend: ON DELETE CASCADE removed them all in the owner's own statement, which held SQLite's event loop for seconds
// and on PostgreSQL outran the store's statement deadline (503 store_unavailable on every try, the key never deleted).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { keepsTurning } from '../src/lib/test-stall.js';
import type { Database } from '../src/store/database.js';
import { STATEMENT_DEADLINE_MS } from '../src/store/postgres-connection.js';
import { DATABASE_BACKENDS, openForSuite } from '../src/store/test-databases.js';
import { seedTokens, tokenCount } from '../src/store/test-token-rows.js';
import { appPath, call, createApp, serveApimAdmin, type ServedAdmin } from './helpers/apim-admin.js';

/** Enough rows that one statement deleting them all held SQLite's event loop for most of a second. */
const MANY = 50_000;
/** More than one PostgreSQL chunk (chunked-delete.ts), which the trigger below makes outlast the deadline. */
const OVER_A_CHUNK = 6000;

for (const backend of DATABASE_BACKENDS) {
  describe(`deleting the owner of many OAuth tokens (${backend.name})`, { skip: backend.skip }, () => {
    let db: Database;
    let admin: ServedAdmin;
    openForSuite(backend, (opened) => (db = opened));
    after(() => admin?.close());

    before(async () => {
      admin = await serveApimAdmin(db);
      if (backend.name !== 'postgres') return;
      // Stands in for a cascade over the millions of rows a busy key leaves in a day: any statement deleting more than a
      // chunk of tokens takes longer than the store's deadline.
      await sql
        .raw(
          `create function slow_big_token_delete() returns trigger language plpgsql as $$
           begin if (select count(*) from gone) > 5000 then perform pg_sleep(${(STATEMENT_DEADLINE_MS + 1000) / 1000}); end if; return null; end $$;
           create trigger slow_big_token_delete after delete on oauth_access_tokens referencing old table as gone
           for each statement execute function slow_big_token_delete()`,
        )
        .execute(db.kysely);
    });

    const live = () => Date.now() + 3_600_000;

    test(`a key with ${MANY} tokens is deleted (200), the event loop turning throughout, none of its tokens left`, async () => {
      const a = await createApp(admin.url, []);
      await seedTokens(db, a.keyId, MANY, live(), 'key-');
      const deleted = await keepsTurning(() => call(admin.url, 'DELETE', appPath(a, `/keys/${a.keyId}`)));
      assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
      assert.equal(await tokenCount(db, a.keyId), 0);
      assert.equal((await call(admin.url, 'GET', appPath(a, `/keys/${a.keyId}`))).status, 404);
    });

    test('an app, and a developer, whose keys hold more tokens than one chunk are deleted (200), none of the tokens left', async () => {
      const app = await createApp(admin.url, []);
      await seedTokens(db, app.keyId, OVER_A_CHUNK, live(), 'app-');
      const deletedApp = await call(admin.url, 'DELETE', appPath(app));
      assert.equal(deletedApp.status, 200, JSON.stringify(deletedApp.body));
      assert.equal(await tokenCount(db, app.keyId), 0);

      const dev = await createApp(admin.url, []);
      await seedTokens(db, dev.keyId, OVER_A_CHUNK, live(), 'dev-');
      const deletedDev = await call(admin.url, 'DELETE', `/v1/developers/${encodeURIComponent(dev.email)}`);
      assert.equal(deletedDev.status, 200, JSON.stringify(deletedDev.body));
      assert.equal(await tokenCount(db, dev.keyId), 0);
    });

    test('a key path naming another app\'s key is a 404 that leaves that key\'s tokens alone', async () => {
      const [mine, theirs] = [await createApp(admin.url, []), await createApp(admin.url, [])];
      await seedTokens(db, theirs.keyId, 3, live(), 'theirs-');
      assert.equal((await call(admin.url, 'DELETE', appPath(mine, `/keys/${theirs.keyId}`))).status, 404);
      assert.equal(await tokenCount(db, theirs.keyId), 3);
    });
  });
}
