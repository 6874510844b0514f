// What the admin API answers for a key lifetime or a product list it refuses: one problem per wrong field, saying what
// the field takes, and every problem of a product list at once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Database } from '../src/store/index.js';
import { DATABASE_BACKENDS, type TestDatabase } from '../src/store/test-databases.js';
import { call, type ServedAdmin, serveApimAdmin } from './helpers/apim-admin.js';

const lifetime = (unit: string, max: number) => `must be a whole number of ${unit} from 1 to ${max} (100 years), as a number or a string of digits, or -1 for never`;
const SECONDS = lifetime('seconds', 3_153_600_000);
const MILLISECONDS = lifetime('milliseconds', 3_153_600_000_000);

for (const backend of DATABASE_BACKENDS) {
  describe(`admin API validation messages (${backend.name})`, { skip: backend.skip }, () => {
    let target: TestDatabase;
    let db: Database;
    let admin: ServedAdmin;
    const email = 'ada@example.com';
    const app = `/v1/developers/${email}/apps/app`;
    const details = async (method: string, path: string, body: unknown) => {
      const a = await call(admin.url, method, path, body);
      assert.equal(a.status, 400, JSON.stringify(a.body));
      return a.body.error.details;
    };

    before(async () => {
      target = await backend.create();
      db = await target.open();
      admin = await serveApimAdmin(db);
      assert.equal((await call(admin.url, 'POST', '/v1/apiproducts', { name: 'gold', displayName: 'Gold' })).status, 201);
      assert.equal((await call(admin.url, 'POST', '/v1/developers', { email, firstName: 'Ada', lastName: 'L', userName: 'ada' })).status, 201);
      assert.equal((await call(admin.url, 'POST', `/v1/developers/${email}/apps`, { name: 'app', apiProducts: ['gold'] })).status, 201);
    });
    after(async () => {
      await admin?.close();
      await db?.close();
      await target?.dispose();
    });

    test('a key lifetime that is no whole number in range gets one problem saying what it takes (before: "Invalid input", or two for one field)', async () => {
      for (const expiresInSeconds of [1.5, '1.5', '1e3', 1e30, '99999999999999999999', 0, -2, true, null, {}]) {
        assert.deepEqual(await details('POST', `${app}/keys`, { expiresInSeconds }), [{ path: 'expiresInSeconds', message: SECONDS }], JSON.stringify(expiresInSeconds));
      }
      for (const keyExpiresIn of ['1e3', 1.5, 1e30]) {
        assert.deepEqual(await details('POST', `/v1/developers/${email}/apps`, { name: 'late', keyExpiresIn }), [{ path: 'keyExpiresIn', message: MILLISECONDS }], JSON.stringify(keyExpiresIn));
      }
      // Still taken: a number, a string of digits, -1.
      for (const expiresInSeconds of [3600, '3600', -1, '-1']) assert.equal((await call(admin.url, 'POST', `${app}/keys`, { expiresInSeconds })).status, 201, JSON.stringify(expiresInSeconds));
    });

    test('a product list with an unknown and a repeated product names both (before: the repeat only, the unknown one on the next try)', async () => {
      const expected = [
        { path: 'apiProducts[0]', message: 'API product "nope" does not exist' },
        { path: 'apiProducts[2]', message: '"gold" is listed twice' },
      ];
      const apiProducts = ['nope', 'gold', 'gold'];
      assert.deepEqual(await details('POST', `/v1/developers/${email}/apps`, { name: 'other', apiProducts }), expected);
      assert.deepEqual(await details('PUT', app, { apiProducts }), expected);
      assert.deepEqual(await details('POST', `${app}/keys`, { apiProducts }), expected);
      assert.equal((await call(admin.url, 'GET', `/v1/developers/${email}/apps/other`)).status, 404, 'nothing was created');
    });
  });
}
