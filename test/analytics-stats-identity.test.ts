// Apps and developers in GET /v1/analytics/stats and `tollgate analytics`: counted by id, since an app's name is unique
// only per developer and an email can change hands; the same answers from SQLite and PostgreSQL.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CommanderError } from 'commander';
import { recordRow, type AnalyticsRecord } from '../src/analytics/record.js';
import { registerAnalyticsRoutes } from '../src/analytics/stats-routes.js';
import type { StatsRunner } from '../src/analytics/stats-runner.js';
import { sampleRecord } from '../src/analytics/test-records.js';
import { analyticsCommand } from '../src/cli/analytics.js';
import { AdminRouter } from '../src/gateway/admin-router.js';
import { AnalyticsRecords, type Database } from '../src/store/index.js';
import { DATABASE_BACKENDS, type TestDatabase } from '../src/store/test-databases.js';
import { serveAdmin, type ServedAdmin } from './helpers/apim-admin.js';

const TOKEN = 'stats-identity-token';
const T0 = Date.UTC(2025, 2, 3, 10, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString();
const RANGE = `from=${iso(T0)}&to=${iso(T0 + 3_600_000)}&bucket=1h`;

const ALICE = { developerId: 'dev-alice', developerEmail: 'alice@old.example' };
const ALICE_RENAMED = { developerId: 'dev-alice', developerEmail: 'alice@new.example' };
const MALLORY = { developerId: 'dev-mallory', developerEmail: 'mallory@example.com' };
/** Alice's first chatbot, deleted; her second, made with the same name; Mallory's, named like them. */
const ALICE_OLD_CHATBOT = { appId: 'app-a1', appName: 'chatbot' };
const ALICE_CHATBOT = { appId: 'app-a2', appName: 'chatbot' };
const MALLORY_CHATBOT = { appId: 'app-m1', appName: 'chatbot' };
const NO_IDENTITY = { developerId: undefined, developerEmail: undefined, appId: undefined, appName: undefined, product: undefined };

const at = (minute: number, fields: Partial<AnalyticsRecord>, tokens: [number, number]) => ({ time: T0 + minute * 60_000, inputTokens: tokens[0], outputTokens: tokens[1], ...fields });
const RECORDS: Partial<AnalyticsRecord>[] = [
  at(1, { ...ALICE, ...ALICE_OLD_CHATBOT }, [7, 2]),
  // Alice changed her email, then made a new app called chatbot.
  at(2, { ...ALICE_RENAMED, ...ALICE_CHATBOT }, [1, 1]),
  at(3, { ...MALLORY, ...MALLORY_CHATBOT }, [10, 40]),
  at(4, { ...MALLORY, ...MALLORY_CHATBOT }, [12, 40]),
  at(5, { ...MALLORY, ...MALLORY_CHATBOT }, [20, 40]),
  at(6, NO_IDENTITY, [0, 0]),
];

for (const backend of DATABASE_BACKENDS) {
  describe(`analytics stats by app and developer identity (${backend.name})`, { skip: backend.skip }, () => {
    let target: TestDatabase;
    let db: Database;
    let served: ServedAdmin | undefined;
    let stats: StatsRunner | undefined;

    before(async () => {
      target = await backend.create();
      db = await target.open({ listen: false });
      await new AnalyticsRecords(db).insert(RECORDS.map((r, i) => recordRow(sampleRecord(i, r))!));
      const router = new AdminRouter(TOKEN);
      stats = registerAnalyticsRoutes(router, { db });
      served = await serveAdmin(router);
    });
    after(async () => {
      await served?.close();
      await stats?.close();
      await db?.close();
      await target?.dispose();
    });

    async function get(query: string): Promise<{ status: number; body: any; text: string }> {
      const res = await fetch(`${served!.url}/v1/analytics/stats?${query}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      const text = await res.text();
      return { status: res.status, body: res.headers.get('content-type')?.startsWith('application/json') ? JSON.parse(text) : undefined, text };
    }

    const METRICS = 'metrics=requests,input_tokens,output_tokens';

    test('groupBy=app counts each app apart, same-named ones of other developers and a deleted one included, shown with its id', async () => {
      const { status, body } = await get(`${RANGE}&groupBy=app&${METRICS}`);
      assert.equal(status, 200);
      assert.deepEqual(body.groupBy, ['app']);
      assert.deepEqual(body.rows, [
        { bucket_start: iso(T0), app: 'chatbot', app_id: 'app-a1', requests: 1, input_tokens: 7, output_tokens: 2 },
        { bucket_start: iso(T0), app: 'chatbot', app_id: 'app-a2', requests: 1, input_tokens: 1, output_tokens: 1 },
        { bucket_start: iso(T0), app: 'chatbot', app_id: 'app-m1', requests: 3, input_tokens: 42, output_tokens: 120 },
        { bucket_start: iso(T0), app: null, app_id: null, requests: 1, input_tokens: 0, output_tokens: 0 },
      ]);
    });

    test('groupBy=developer counts a developer whose email changed once, shown with the email of its newest record', async () => {
      const { body } = await get(`${RANGE}&groupBy=developer&${METRICS}`);
      assert.deepEqual(body.rows, [
        { bucket_start: iso(T0), developer: 'alice@new.example', developer_id: 'dev-alice', requests: 2, input_tokens: 8, output_tokens: 3 },
        { bucket_start: iso(T0), developer: 'mallory@example.com', developer_id: 'dev-mallory', requests: 3, input_tokens: 42, output_tokens: 120 },
        { bucket_start: iso(T0), developer: null, developer_id: null, requests: 1, input_tokens: 0, output_tokens: 0 },
      ]);
      // The name is the group's: in a bucket of its own, the old email.
      const minutes = await get(`from=${iso(T0)}&to=${iso(T0 + 3 * 60_000)}&bucket=1m&groupBy=developer,app&filter=developer_id==dev-alice`);
      assert.deepEqual(minutes.body.rows, [
        { bucket_start: iso(T0 + 60_000), developer: 'alice@old.example', developer_id: 'dev-alice', app: 'chatbot', app_id: 'app-a1', requests: 1 },
        { bucket_start: iso(T0 + 120_000), developer: 'alice@new.example', developer_id: 'dev-alice', app: 'chatbot', app_id: 'app-a2', requests: 1 },
      ]);
    });

    test('percentiles group by the same ids', async () => {
      const { body } = await get(`${RANGE}&groupBy=app&metrics=requests,latency_p99&filter=app_id!=`);
      assert.deepEqual(body.rows.map((r: { app_id: string; requests: number }) => [r.app_id, r.requests]), [['app-a1', 1], ['app-a2', 1], ['app-m1', 3]]);
    });

    test('an app name alone is refused; beside its developer, or as an app id, it picks that developer\'s apps or that one app', async () => {
      for (const filter of ['app==chatbot', 'app!=chatbot', 'developer!=alice@new.example;app==chatbot']) {
        const { status, body } = await get(`${RANGE}&filter=${encodeURIComponent(filter)}`);
        assert.equal(status, 400, filter);
        assert.equal(body.error.code, 'invalid');
        const path = filter.startsWith('developer') ? 'filter[1]' : 'filter[0]';
        assert.deepEqual(body.error.details, [{ path, message: 'app names are unique only per developer: add developer==<email> (or developer_id==<id>), or pick the app by app_id==<id>' }], filter);
      }
      const sums = async (filter: string) => (await get(`${RANGE}&${METRICS}&filter=${encodeURIComponent(filter)}`)).body.rows;
      assert.deepEqual(await sums('developer==Mallory@Example.com;app==chatbot'), [{ bucket_start: iso(T0), requests: 3, input_tokens: 42, output_tokens: 120 }]);
      // An email matches the records made under it; developer_id follows a developer across emails.
      assert.deepEqual(await sums('developer==alice@new.example;app==chatbot'), [{ bucket_start: iso(T0), requests: 1, input_tokens: 1, output_tokens: 1 }]);
      assert.deepEqual(await sums('developer_id==dev-alice;app==chatbot'), [{ bucket_start: iso(T0), requests: 2, input_tokens: 8, output_tokens: 3 }]);
      assert.deepEqual(await sums('app_id==app-a1'), [{ bucket_start: iso(T0), requests: 1, input_tokens: 7, output_tokens: 2 }]);
      assert.deepEqual(await sums('developer_id==dev-mallory;app!=chatbot'), []);
      assert.deepEqual(await sums('app=='), [{ bucket_start: iso(T0), requests: 1, input_tokens: 0, output_tokens: 0 }]);
    });

    test('CSV has the id column beside the name', async () => {
      const { status, text } = await get(`${RANGE}&groupBy=developer,app&metrics=requests&format=csv`);
      assert.equal(status, 200);
      assert.equal(
        text,
        [
          'bucket_start,developer,developer_id,app,app_id,requests',
          // Each row's email is its own newest record's: Alice's first app was used under her old one.
          `${iso(T0)},alice@new.example,dev-alice,chatbot,app-a2,1`,
          `${iso(T0)},alice@old.example,dev-alice,chatbot,app-a1,1`,
          `${iso(T0)},mallory@example.com,dev-mallory,chatbot,app-m1,3`,
          `${iso(T0)},,,,,1`,
          '',
        ].join('\r\n'),
      );
    });

    test('tollgate analytics --group-by app prints the id column; an app name alone exits 2 saying what to add', async () => {
      const run = async (args: string[]) => {
        const out: string[] = [];
        const err: string[] = [];
        const command = analyticsCommand({ out: (l) => out.push(l), err: (l) => err.push(l), env: { TOLLGATE_ADMIN_TOKEN: TOKEN }, now: () => T0 + 3_600_000 }).exitOverride();
        let exitCode = 0;
        try {
          await command.parseAsync(['--admin', served!.url, '--since', '1h', ...args], { from: 'user' });
        } catch (e) {
          if (!(e instanceof CommanderError)) throw e;
          exitCode = e.exitCode;
        }
        return { out, err, exitCode };
      };
      const table = await run(['--group-by', 'app', '--metrics', 'requests,input_tokens']);
      assert.equal(table.exitCode, 0);
      assert.deepEqual(table.out.slice(0, 6), [
        'bucket_start              app      app_id  requests  input_tokens',
        '------------------------  -------  ------  --------  ------------',
        `${iso(T0)}  chatbot  app-a1         1             7`,
        `${iso(T0)}  chatbot  app-a2         1             1`,
        `${iso(T0)}  chatbot  app-m1         3            42`,
        `${iso(T0)}  -        -              1             0`,
      ]);
      const refused = await run(['--filter', 'app==chatbot']);
      assert.equal(refused.exitCode, 2);
      assert.equal(refused.err[1], 'tollgate analytics: filter[0]: app names are unique only per developer: add developer==<email> (or developer_id==<id>), or pick the app by app_id==<id>');
    });
  });
}
