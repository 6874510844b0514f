// KvmView's puts on every backend, made as two replicas sharing one database make them: the store decides whether to
// write, not a replica's memory (which hears of the other's writes only later, or not at all here), and only into a
// map the files or the admin API declare.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { manifestOf } from '../config/manifest.js';
import { silentLogger } from '../lib/logger.js';
import { TimeoutError } from '../lib/with-timeout.js';
import type { Database } from '../store/index.js';
import { DATABASE_BACKENDS, type TestDatabase } from '../store/test-databases.js';
import { KvmCipher } from './kvm-cipher.js';
import { KVM_PUT_TIMEOUT_MS, KvmView, mapKeyProblem, UnreadableKvmEntryError } from './kvm-view.js';
import { deleteDocument } from './manifest-tables.js';

const cipher = new KvmCipher(randomBytes(32));
const declare = (db: Database, name: string, encrypted = false) => db.manifests.create({ kind: 'KeyValueMap', name, apiVersion: 'apim.googleapis.com/v1', spec: { encrypted } });
const stored = async (db: Database, map: string, key: string) => (await db.kvm.get('environment', map, key))?.value;
/** A replica's view: no change feed is wired, so it never hears of another's writes. */
const view = (db: Database) => new KvmView(cipher, db, silentLogger);
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const backend of DATABASE_BACKENDS) {
  describe(backend.name, { skip: backend.skip }, () => {
    let target: TestDatabase;
    let a: Database;
    let b: Database;

    before(async () => {
      target = await backend.create();
      a = await target.open({ listen: false });
      b = await target.open({ listen: false });
      await declare(a, 'seen');
      await declare(a, 'vault', true);
    });

    after(async () => {
      await a?.close();
      await b?.close();
      await target?.dispose();
    });

    test('under another key, or none, an encrypted entry fails its read and its map refuses writes; a plain map is not affected', async () => {
      await view(a).put('environment', 'vault', 'secret', 'TOPSECRET', true);
      for (const other of [new KvmCipher(randomBytes(32)), null]) {
        const wrong = new KvmView(other, a, silentLogger);
        wrong.load(await a.kvm.listAll());
        // Before: the entry was dropped as if missing, and every read took the policy's default.
        assert.throws(() => wrong.get('environment', 'vault', 'secret'), UnreadableKvmEntryError);
        assert.ok(wrong.unreadableEntries >= 1);
        assert.equal(wrong.get('environment', 'vault', 'never-written'), undefined);
        if (other) {
          // Before: written under the second key, the map held entries no one key read.
          await assert.rejects(wrong.put('environment', 'vault', 'fresh', 'v', true), /encrypted under another key/);
          assert.equal(await stored(a, 'vault', 'fresh'), undefined);
          assert.match((await mapKeyProblem(a.kvm, other, 'vault'))!, /TOLLGATE_KVM_KEY is not the key/);
        }
        await wrong.put('environment', 'seen', 'plain', 'ok', true);
        assert.equal(wrong.get('environment', 'seen', 'plain'), 'ok');
      }
      assert.equal(await mapKeyProblem(a.kvm, cipher, 'vault'), undefined);
      // Rewritten under a key the view has, the entry reads again.
      const right = view(a);
      right.load(await a.kvm.listAll());
      assert.equal(right.get('environment', 'vault', 'secret'), 'TOPSECRET');
      assert.equal(right.unreadableEntries, 0);
    });

    test("the last put answered is what the store keeps, though this replica's memory missed the one before it", async () => {
      const [onA, onB] = [view(a), view(b)];
      await onA.put('environment', 'seen', 'last', 'x', true);
      await onB.put('environment', 'seen', 'last', 'y', true);
      // Before: A's memory still said x, so A wrote nothing and the store kept B's earlier y.
      await onA.put('environment', 'seen', 'last', 'x', true);
      assert.equal(await stored(a, 'seen', 'last'), 'x');
      assert.equal(onA.get('environment', 'seen', 'last'), 'x');
    });

    test('a put of the value the store holds writes nothing, in an encrypted map too', async () => {
      const onA = view(a);
      for (const map of ['seen', 'vault']) {
        await onA.put('environment', map, 'same', 'v', true);
        const first = await a.kvm.get('environment', map, 'same');
        await new Promise((r) => setTimeout(r, 5));
        await view(b).put('environment', map, 'same', 'v', true);
        assert.deepEqual(await a.kvm.get('environment', map, 'same'), first, map);
      }
      assert.notEqual(await stored(a, 'vault', 'same'), 'v', 'stored encrypted');
    });

    test("override: false keeps the entry the store holds, though this replica's memory has not heard of it", async () => {
      await view(b).put('environment', 'seen', 'first', 'from-b', true);
      const onA = view(a);
      // Before: A's memory had no entry, so A replaced B's.
      await onA.put('environment', 'seen', 'first', 'from-a', false);
      assert.equal(await stored(a, 'seen', 'first'), 'from-b');
      assert.equal(onA.get('environment', 'seen', 'first'), undefined, 'memory is not told a value the store does not hold');
      await onA.put('environment', 'seen', 'fresh', 'from-a', false);
      assert.equal(await stored(a, 'seen', 'fresh'), 'from-a');
      assert.equal(onA.get('environment', 'seen', 'fresh'), 'from-a');
    });

    test('a put into a map nobody declared is refused and stores nothing; the files declare maps too', async () => {
      const onA = view(a);
      // Before: stored, where the admin API could neither list nor delete it.
      await assert.rejects(onA.put('environment', 'ghost', 'k', 'v', true), /no key-value map named "ghost" is declared/);
      await assert.rejects(onA.put('environment', 'ghost', 'k', 'v', false), /no key-value map named "ghost"/);
      assert.equal(await stored(a, 'ghost', 'k'), undefined);
      onA.useFileMaps([manifestOf('KeyValueMap', 'ghost', { encrypted: false }, 'test')]);
      await onA.put('environment', 'ghost', 'k', 'v', true);
      assert.equal(await stored(a, 'ghost', 'k'), 'v');
    });

    test("once the admin API deletes a map, another replica's puts into it are refused", async () => {
      await declare(a, 'doomed');
      const onB = view(b);
      await onB.put('environment', 'doomed', 'k', 'v', true);
      await a.transaction((tx) => deleteDocument(tx, 'KeyValueMap', 'doomed'));
      await assert.rejects(onB.put('environment', 'doomed', 'k2', 'v', true), /no key-value map named "doomed"/);
      assert.deepEqual((await a.kvm.listAll()).filter((e) => e.mapName === 'doomed'), []);
    });
  });
}

// Only PostgreSQL lets a put run while a delete of its map is uncommitted (SQLite serialises writers).
const POSTGRES = DATABASE_BACKENDS.find((d) => d.name === 'postgres')!;
if (POSTGRES.skip === undefined) {
  describe('postgres: a put alongside a delete of its map', () => {
    let target: TestDatabase;
    let a: Database;
    let b: Database;

    before(async () => {
      target = await POSTGRES.create();
      a = await target.open({ listen: false });
      b = await target.open({ listen: false });
    });

    after(async () => {
      await a?.close();
      await b?.close();
      await target?.dispose();
    });

    /** Whether a put's read of its map waits on a lock (the delete's). */
    const putWaits = async () => {
      const r = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and query like '%from "manifests"%for share%'`.execute(a.kysely);
      return r.rows[0].n > 0;
    };

    test('waits for the delete and stores nothing, rather than leave an entry no map holds', async () => {
      await declare(a, 'racing');
      let commit!: () => void;
      const held = new Promise<void>((r) => (commit = r));
      let deleted!: () => void;
      const deleting = new Promise<void>((r) => (deleted = r));
      const deletion = a.transaction(async (tx) => {
        await deleteDocument(tx, 'KeyValueMap', 'racing');
        deleted();
        await held;
      });
      await deleting;
      const put = view(b).put('environment', 'racing', 'k', 'v', true);
      const settled = put.then(() => 'stored', () => 'refused');
      // Before: the put read the map as committed before the delete, stored its entry and committed first.
      for (let waiting = false; !waiting; ) {
        if ((await Promise.race([settled, new Promise((r) => setTimeout(r, 10, 'pending'))])) !== 'pending') break;
        waiting = await putWaits();
      }
      commit();
      await deletion;
      assert.equal(await settled, 'refused');
      assert.deepEqual((await a.kvm.listAll()).filter((e) => e.mapName === 'racing'), []);
    });
  });
}

// Only PostgreSQL can be made to answer a COMMIT late: a deferred trigger runs at COMMIT, as a synchronous standby or an
// fsync stall delays it.
if (POSTGRES.skip === undefined) {
  describe('postgres: a put whose COMMIT is answered after the put gave up', () => {
    let target: TestDatabase;
    let a: Database;

    before(async () => {
      target = await POSTGRES.create();
      a = await target.open({ listen: false });
      await declare(a, 'late');
      const fn = sql.id(target.schema!, 'slow_commit');
      await sql`create function ${fn}() returns trigger language plpgsql as $$
        begin if new.value = 'slow' then perform pg_sleep(${sql.lit((KVM_PUT_TIMEOUT_MS + 500) / 1000)}); end if; return null; end $$`.execute(a.kysely);
      await sql`create constraint trigger slow_commit after insert or update on ${sql.id(target.schema!, 'kvm_entries')}
        deferrable initially deferred for each row execute function ${fn}()`.execute(a.kysely);
    });

    after(async () => {
      await a?.close();
      await target?.dispose();
    });

    test('is held by the replica that made it once it commits', async () => {
      const onA = view(a);
      await onA.put('environment', 'late', 'k', 'before', true);
      await assert.rejects(onA.put('environment', 'late', 'k', 'slow', true), TimeoutError);
      while ((await stored(a, 'late', 'k')) !== 'slow') await pause(50);
      // Its answer is on its way to this replica too.
      for (const until = Date.now() + 1000; onA.get('environment', 'late', 'k') !== 'slow' && Date.now() < until; ) await pause(10);
      // Before: 'before' until a reload of everything (this replica skips its own change's event).
      assert.equal(onA.get('environment', 'late', 'k'), 'slow');
    });
  });
}
