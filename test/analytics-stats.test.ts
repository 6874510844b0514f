// GET /v1/analytics/stats and `tollgate analytics` over real HTTP, with the same answers from SQLite and PostgreSQL.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { syncBuiltinESMExports } from 'node:module';
import workerThreads from 'node:worker_threads';
import { CommanderError } from 'commander';
import { recordRow } from '../src/analytics/record.js';
import { registerAnalyticsRoutes } from '../src/analytics/stats-routes.js';
import type { StatsRunner } from '../src/analytics/stats-runner.js';
import { lockRecordsTable, sampleRecord } from '../src/analytics/test-records.js';
import { analyticsCommand } from '../src/cli/analytics.js';
import { AdminRouter } from '../src/gateway/admin-router.js';
import { AnalyticsRecords, type AnalyticsRecordRow, type Database } from '../src/store/index.js';
import { DATABASE_BACKENDS, type TestDatabase } from '../src/store/test-databases.js';
import { serveAdmin, type ServedAdmin } from './helpers/apim-admin.js';
import type { AnalyticsRecord } from '../src/analytics/record.js';

const TOKEN = 'stats-test-token';
const T0 = Date.UTC(2025, 0, 15, 10, 0, 0);
const RECENT = Date.now() - 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString();

function row(i: number, overrides: Partial<AnalyticsRecord>): AnalyticsRecordRow {
  return recordRow(sampleRecord(i, overrides))!;
}

/** chatbot/llama: four in 10:00 (one failed); search/llama: one 429 in 10:00; chatbot/mistral: two in 10:01; one outside. */
const ROWS: AnalyticsRecordRow[] = [
  row(1, { time: T0 + 1_000, latencyMs: 30, ttftMs: 3 }),
  row(2, { time: T0 + 2_000, latencyMs: 10, ttftMs: 1 }),
  row(3, { time: T0 + 3_000, latencyMs: 40, ttftMs: undefined, status: 500, faultCode: 'upstream_error' }),
  row(4, { time: T0 + 4_000, latencyMs: 20, ttftMs: 2 }),
  row(5, { time: T0 + 30_000, appId: 'app-2', appName: 'search', developerId: 'dev-2', developerEmail: 'kim@example.com', latencyMs: 50, status: 429, faultCode: 'policies.ratelimit.QuotaViolation' }),
  row(6, { time: T0 + 90_000, model: 'mistral', product: 'silver', latencyMs: 200, tokensEstimated: true }),
  row(7, { time: T0 + 95_000, model: 'mistral', product: 'silver', latencyMs: 100, inputTokens: undefined, outputTokens: undefined }),
  row(8, { time: T0 + 30 * 60_000, latencyMs: 1 }),
  row(9, { time: RECENT, appId: 'app-3', appName: 'recent' }),
];

const RANGE = `from=${iso(T0)}&to=${iso(T0 + 10 * 60_000)}`;

for (const backend of DATABASE_BACKENDS) {
  describe(`analytics stats (${backend.name})`, { skip: backend.skip }, () => {
    let target: TestDatabase;
    let db: Database;
    let served: ServedAdmin | undefined;
    let stats: StatsRunner | undefined;
    let base: string;

    before(async () => {
      target = await backend.create();
      db = await target.open({ listen: false });
      await new AnalyticsRecords(db).insert(ROWS);
      const router = new AdminRouter(TOKEN);
      stats = registerAnalyticsRoutes(router, { db });
      served = await serveAdmin(router);
      base = served.url;
    });
    after(async () => {
      await served?.close();
      await stats?.close();
      await db?.close();
      await target?.dispose();
    });

    async function get(query: string, token = TOKEN): Promise<{ status: number; body: any; text: string; type: string | null; headers: Headers }> {
      const res = await fetch(`${base}/v1/analytics/stats?${query}`, { headers: { authorization: `Bearer ${token}` } });
      const text = await res.text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      return { status: res.status, body, text, type: res.headers.get('content-type'), headers: res.headers };
    }

    test('grouped by app and model in 1-minute buckets, with sums and nearest-rank percentiles', async () => {
      const { status, body } = await get(`${RANGE}&bucket=1m&groupBy=app,model&metrics=requests,errors,input_tokens,output_tokens,latency_p50,latency_p99,ttft_p50,latency_avg`);
      assert.equal(status, 200);
      assert.equal(body.from, iso(T0));
      assert.equal(body.bucket, '1m');
      assert.deepEqual(body.groupBy, ['app', 'model']);
      assert.deepEqual(body.rows, [
        { bucket_start: iso(T0), app: 'chatbot', app_id: 'app-1', model: 'llama', requests: 4, errors: 1, input_tokens: 40, output_tokens: 20, latency_p50: 20, latency_p99: 40, ttft_p50: 2, latency_avg: 25 },
        { bucket_start: iso(T0), app: 'search', app_id: 'app-2', model: 'llama', requests: 1, errors: 1, input_tokens: 10, output_tokens: 5, latency_p50: 50, latency_p99: 50, ttft_p50: 20, latency_avg: 50 },
        { bucket_start: iso(T0 + 60_000), app: 'chatbot', app_id: 'app-1', model: 'mistral', requests: 2, errors: 0, input_tokens: 10, output_tokens: 5, latency_p50: 100, latency_p99: 200, ttft_p50: 20, latency_avg: 150 },
      ]);
    });

    test('one bucket per hour without grouping; the default metric is requests', async () => {
      const { body } = await get(`${RANGE}&bucket=1h`);
      assert.deepEqual(body.rows, [{ bucket_start: iso(T0), requests: 7 }]);
    });

    test('tzo: hour and day buckets start at the offset\'s hours and midnights, and times are written at it', async () => {
      // T0 is 10:00Z, 15:30 at +05:30: its records are in the hour that began there at 15:00 (09:30Z), and in the day
      // that began at 18:30Z the day before.
      const { status, body } = await get(`${RANGE}&bucket=1h&tzo=%2B05:30`);
      assert.equal(status, 200);
      assert.deepEqual([body.from, body.tzo], ['2025-01-15T15:30:00.000+05:30', '+05:30']);
      assert.deepEqual(body.rows, [{ bucket_start: '2025-01-15T15:00:00.000+05:30', requests: 7 }]);
      const day = await get(`${RANGE}&bucket=1d&tzo=330`);
      assert.deepEqual(day.body.rows, [{ bucket_start: '2025-01-15T00:00:00.000+05:30', requests: 7 }]);
      // At -08:00 the day of 10:00Z began at 08:00Z; -0800, -480 and -08:00 are the same offset.
      for (const tzo of ['-0800', '-480', '-08:00']) {
        const west = await get(`${RANGE}&bucket=1d&tzo=${tzo}`);
        assert.deepEqual(west.body.rows, [{ bucket_start: '2025-01-15T00:00:00.000-08:00', requests: 7 }], tzo);
      }
      // Without it, UTC: a record at 20:00Z is in the day of the 15th there, and in the 16th's at +05:30.
      const late = Date.UTC(2025, 0, 15, 20);
      await new AnalyticsRecords(db).insert([row(300, { time: late, appId: 'app-5', appName: 'late' })]);
      const range = `from=${iso(late)}&to=${iso(late + 1)}&bucket=1d&filter=app_id==app-5`;
      assert.deepEqual((await get(range)).body.rows, [{ bucket_start: '2025-01-15T00:00:00.000Z', requests: 1 }]);
      assert.deepEqual((await get(`${range}&tzo=%2B05:30`)).body.rows, [{ bucket_start: '2025-01-16T00:00:00.000+05:30', requests: 1 }]);
      const csv = await get(`${range}&tzo=%2B05:30&format=csv`);
      assert.match(csv.text, /\r\n2025-01-16T00:00:00\.000\+05:30,1\r\n$/);
    });

    test('filters: ==, !=, several joined by ;, status as a number, empty value for missing', async () => {
      const product = await get(`${RANGE}&groupBy=model&filter=product==gold`);
      assert.deepEqual(product.body.rows, [{ bucket_start: iso(T0), model: 'llama', requests: 5 }]);
      const two = await get(`${RANGE}&groupBy=app,status&filter=model==llama;status!=200`);
      assert.deepEqual(two.body.rows, [
        { bucket_start: iso(T0), app: 'chatbot', app_id: 'app-1', status: 500, requests: 1 },
        { bucket_start: iso(T0), app: 'search', app_id: 'app-2', status: 429, requests: 1 },
      ]);
      const dev = await get(`${RANGE}&groupBy=developer,fault&filter=developer==kim@example.com`);
      assert.deepEqual(dev.body.rows, [{ bucket_start: iso(T0), developer: 'kim@example.com', developer_id: 'dev-2', fault: 'policies.ratelimit.QuotaViolation', requests: 1 }]);
      // A developer is its email in any case, as the admin API finds it.
      assert.deepEqual((await get(`${RANGE}&groupBy=developer,fault&filter=developer==Kim@Example.COM`)).body.rows, dev.body.rows);
      assert.deepEqual((await get(`${RANGE}&filter=developer!=KIM@example.com`)).body.rows, [{ bucket_start: iso(T0), requests: 6 }]);
      // Emails are ASCII: a look-alike (the Kelvin sign, which PostgreSQL's lower() folds to k) matches on no backend.
      assert.deepEqual((await get(`${RANGE}&filter=developer==${encodeURIComponent('\u212Aim@example.com')}`)).body.rows, []);
      const noFault = await get(`${RANGE}&filter=fault==`);
      assert.deepEqual(noFault.body.rows, [{ bucket_start: iso(T0), requests: 5 }]);
    });

    test('the default range is the last 24 hours, and the answer says how old the newest record is', async () => {
      const { body } = await get('groupBy=app');
      assert.deepEqual(body.rows, [{ bucket_start: iso(Math.floor(RECENT / 3_600_000) * 3_600_000), app: 'recent', app_id: 'app-3', requests: 1 }]);
      assert.equal(body.newestRecordAt, iso(RECENT));
      assert.ok(body.lagSeconds >= 3599 && body.lagSeconds < 3700, `lagSeconds ${body.lagSeconds}`);
    });

    test('csv with a header line; how old the newest record is comes as headers', async () => {
      const { status, text, type, headers } = await get(`${RANGE}&bucket=1m&groupBy=app,model&metrics=requests,ttft_p99&format=csv`);
      assert.equal(status, 200);
      assert.match(type!, /^text\/csv/);
      assert.equal(headers.get('x-tollgate-newest-record-at'), iso(RECENT));
      const lag = Number(headers.get('x-tollgate-lag-seconds'));
      assert.ok(lag >= 3599 && lag < 3700, `x-tollgate-lag-seconds ${lag}`);
      assert.equal(
        text,
        ['bucket_start,app,app_id,model,requests,ttft_p99', `${iso(T0)},chatbot,app-1,llama,4,3`, `${iso(T0)},search,app-2,llama,1,20`, `${iso(T0 + 60_000)},chatbot,app-1,mistral,2,20`, ''].join('\r\n'),
      );
    });

    // PostgreSQL only: holding queries back takes a lock that stops readers, which SQLite's WAL never does.
    if (backend.name === 'postgres') test('beyond the queries at once and those waiting, 503 stats_busy; a query past its timeout, 503 stats_timeout', async () => {
      const router = new AdminRouter(TOKEN);
      const slow = registerAnalyticsRoutes(router, { db, stats: { statementTimeoutMs: 1000 } });
      const own = await serveAdmin(router);
      // Another connection locks the table: every query waits until its statement timeout stops it (or, for a query
      // nothing stops, until the lock goes after 15 s).
      const locker = await target.open({ listen: false });
      const unlock = await lockRecordsTable(locker, 15_000);
      try {
        const answers = await Promise.all(
          Array.from({ length: 11 }, () => fetch(`${own.url}/v1/analytics/stats?${RANGE}`, { headers: { authorization: `Bearer ${TOKEN}` } })),
        );
        const bodies = await Promise.all(answers.map(async (res) => ({ status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json() })));
        const busy = bodies.filter((b) => b.body.error?.code === 'stats_busy');
        assert.deepEqual(busy, [{ status: 503, retryAfter: '1', body: { error: { message: 'Too many analytics queries are running or waiting; try again shortly', code: 'stats_busy' } } }]);
        const stopped = bodies.filter((b) => b.body.error?.code === 'stats_timeout');
        assert.equal(stopped.length, 10, 'two at a time, each stopped by its timeout');
        assert.deepEqual(stopped[0], {
          status: 503,
          retryAfter: null,
          body: { error: { message: 'The query was stopped: it ran longer than 1 s; ask for a shorter range, fewer groupBy dimensions or no percentiles', code: 'stats_timeout' } },
        });
      } finally {
        await unlock();
        await locker.close();
        await own.close();
        await slow.close();
      }
    });

    test('bad queries are 400 with the parameter path', async () => {
      const cases: [string, string][] = [
        ['metrics=requests,bogus', 'metrics[1]'],
        ['groupBy=planet', 'groupBy[0]'],
        ['bucket=2m', 'bucket'],
        [`from=${iso(T0 + 1000)}&to=${iso(T0)}`, 'from'],
        ['from=yesterday', 'from'],
        ['filter=model==x;planet==mars', 'filter[1]'],
        ['filter=status==abc', 'filter[0]'],
        ['colour=blue', 'colour'],
        ['tzo=%2B15:00', 'tzo'],
        ['tzo=%2B05:60', 'tzo'],
        ['tzo=Asia/Kolkata', 'tzo'],
        ['tzo=%2B09', 'tzo'],
        // The range is fine, but written at the offset its end would be past the latest time a Date holds (a 500 before).
        ['from=8639999999000000&to=8640000000000000&tzo=60', 'tzo'],
      ];
      for (const [query, path] of cases) {
        const { status, body } = await get(query);
        assert.equal(status, 400, query);
        assert.equal(body.error.code, 'invalid', query);
        assert.deepEqual(body.error.details.map((d: { path: string }) => d.path), [path], query);
      }
    });

    test('token sums past 2^63 (model servers report the counts) are answered, alike on both backends', async () => {
      const at = Date.UTC(2021, 0, 1);
      await new AnalyticsRecords(db).insert(Array.from({ length: 1025 }, (_, i) => row(100 + i, { time: at + i, inputTokens: Number.MAX_SAFE_INTEGER, outputTokens: 1 })));
      const { status, body } = await get(`from=${iso(at)}&to=${iso(at + 60_000)}&metrics=requests,input_tokens,output_tokens,total_tokens`);
      assert.equal(status, 200);
      const [{ requests, input_tokens, output_tokens, total_tokens }] = body.rows;
      assert.deepEqual([requests, output_tokens], [1025, 1025]);
      const exact = Number(1025n * BigInt(Number.MAX_SAFE_INTEGER));
      for (const sum of [input_tokens, total_tokens]) assert.ok(Math.abs(sum - exact) / exact < 1e-12, `${sum} is not about ${exact}`);
    });

    test('buckets before 1970 start at or before their records', async () => {
      await new AnalyticsRecords(db).insert([-60_001, -60_000, -1].map((time, i) => row(200 + i, { time, appId: 'app-4', appName: 'early' })));
      const { body } = await get('from=-120000&to=0&bucket=1m&groupBy=app');
      assert.deepEqual(body.rows, [
        { bucket_start: '1969-12-31T23:58:00.000Z', app: 'early', app_id: 'app-4', requests: 1 },
        { bucket_start: '1969-12-31T23:59:00.000Z', app: 'early', app_id: 'app-4', requests: 2 },
      ]);
    });

    test('an answer of more than 10,000 rows is refused, saying how many it would be', async () => {
      const at = Date.UTC(2020, 0, 1);
      const many = Array.from({ length: 10_001 }, (_, i) => row(1000 + i, { time: at + (i % 60) * 1000, appId: `id-${i}`, appName: `app-${i}` }));
      for (let i = 0; i < many.length; i += 1024) await new AnalyticsRecords(db).insert(many.slice(i, i + 1024));
      const range = `from=${iso(at)}&to=${iso(at + 60_000)}`;
      for (const format of ['json', 'csv']) {
        const { status, body } = await get(`${range}&groupBy=app&metrics=requests,latency_p99&format=${format}`);
        assert.equal(status, 400, format);
        assert.equal(body.error.details[0].path, 'groupBy');
        assert.equal(body.error.details[0].message, 'this query makes 10001 rows, more than the 10000 an answer holds; use a larger bucket or fewer groupBy dimensions');
      }
      const { status, body } = await get(`${range}&groupBy=model`);
      assert.equal(status, 200);
      assert.deepEqual(body.rows, [{ bucket_start: iso(at), model: 'llama', requests: 10_001 }]);
    });

    test('a range of more buckets than an answer holds rows is answered when its rows fit (empty buckets are never made)', async () => {
      const week = `from=${iso(T0 + 10 * 60_000 - 7 * 86_400_000)}&to=${iso(T0 + 10 * 60_000)}&bucket=1m`;
      // 10,080 buckets of a minute: refused before, whatever the records.
      const none = await get(`${week}&filter=app_id==nobody`);
      assert.equal(none.status, 200);
      assert.deepEqual(none.body.rows, []);
      const { status, body } = await get(`${week}&groupBy=app&metrics=requests,estimated_usage`);
      assert.equal(status, 200);
      assert.deepEqual(body.rows, [
        { bucket_start: iso(T0), app: 'chatbot', app_id: 'app-1', requests: 4, estimated_usage: 0 },
        { bucket_start: iso(T0), app: 'search', app_id: 'app-2', requests: 1, estimated_usage: 0 },
        { bucket_start: iso(T0 + 60_000), app: 'chatbot', app_id: 'app-1', requests: 2, estimated_usage: 1 },
      ]);
      // A year of minutes, for a range with no records.
      const year = await get(`from=${iso(Date.UTC(2010, 0, 1))}&to=${iso(Date.UTC(2011, 0, 1))}&bucket=1m&groupBy=app,model`);
      assert.equal(year.status, 200);
      assert.deepEqual(year.body.rows, []);
    });

    if (backend.name === 'sqlite') test('a query thread that cannot start (a process out of descriptors) is a 503 with retry-after, and the next query runs', async (t) => {
      await stats!.close();
      const RealWorker = workerThreads.Worker;
      // Every new thread exits at once, as one does that cannot open its modules.
      const dying = t.mock.method(workerThreads, 'Worker', function (this: unknown) {
        return new RealWorker('process.exit(1)', { eval: true });
      });
      syncBuiltinESMExports();
      try {
        const refused = await get(`${RANGE}&bucket=1h`);
        // Before: 500 internal_error, read as a bug.
        assert.equal(refused.status, 503);
        assert.equal(refused.headers.get('retry-after'), '1');
        assert.equal(refused.body.error.code, 'stats_unavailable');
      } finally {
        dying.mock.restore();
        syncBuiltinESMExports();
      }
      assert.equal((await get(`${RANGE}&bucket=1h`)).status, 200);
    });

    test('the admin token is required', async () => {
      assert.equal((await get(RANGE, 'wrong')).status, 401);
    });

    describe('tollgate analytics', () => {
      async function run(args: string[], env: NodeJS.ProcessEnv = { TOLLGATE_ADMIN_TOKEN: TOKEN }) {
        const out: string[] = [];
        const err: string[] = [];
        const command = analyticsCommand({ out: (l) => out.push(l), err: (l) => err.push(l), env, now: () => T0 + 10 * 60_000 }).exitOverride();
        let exitCode = 0;
        try {
          await command.parseAsync(['--admin', base, ...args], { from: 'user' });
        } catch (e) {
          if (!(e instanceof CommanderError)) throw e;
          exitCode = e.exitCode;
        }
        return { out, err, exitCode };
      }

      test('prints a table', async () => {
        const { out, exitCode } = await run(['--since', '10m', '--bucket', '1m', '--group-by', 'app,model', '--metrics', 'requests,latency_p99']);
        assert.equal(exitCode, 0);
        assert.deepEqual(out.slice(0, 5), [
          'bucket_start              app      app_id  model    requests  latency_p99',
          '------------------------  -------  ------  -------  --------  -----------',
          `${iso(T0)}  chatbot  app-1   llama           4           40`,
          `${iso(T0)}  search   app-2   llama           1           50`,
          `${iso(T0 + 60_000)}  chatbot  app-1   mistral         2          200`,
        ]);
        assert.match(out.at(-1)!, /^newest record .* s ago\)$/);
      });

      test('csv and json pass through; filters repeat', async () => {
        const csv = await run(['--from', iso(T0), '--to', iso(T0 + 600_000), '--filter', 'developer==kim@example.com;app==search', '--filter', 'model==llama', '--format', 'csv']);
        assert.deepEqual(csv.out, [`bucket_start,requests,errors,input_tokens,output_tokens\r\n${iso(T0)},1,1,10,5`]);
        // How fresh the figures are, which the CSV cannot hold, goes to stderr (the gateway sends it as headers).
        assert.equal(csv.err.length, 1, 'one line');
        assert.match(csv.err[0], /^newest record \S+ \(\d+\.\d s ago\)$/);
        assert.ok(csv.err[0].includes(iso(RECENT)));
        const json = await run(['--from', iso(T0), '--to', iso(T0 + 600_000), '--metrics', 'requests', '--format', 'json']);
        assert.deepEqual(JSON.parse(json.out.join('\n')).rows, [{ bucket_start: iso(T0), requests: 7 }]);
        assert.deepEqual(json.err, [], 'the JSON carries them');
      });

      test('--tzo is passed on', async () => {
        const { out, exitCode } = await run(['--from', iso(T0), '--to', iso(T0 + 600_000), '--bucket', '1d', '--tzo', '-08:00', '--metrics', 'requests', '--format', 'json']);
        assert.equal(exitCode, 0);
        assert.deepEqual(JSON.parse(out.join('\n')).rows, [{ bucket_start: '2025-01-15T00:00:00.000-08:00', requests: 7 }]);
      });

      test('--since 7d --bucket 1m answers: a filter matching nothing prints no rows, exit 0', async () => {
        const { out, exitCode } = await run(['--since', '7d', '--bucket', '1m', '--filter', 'app_id==nobody', '--format', 'json']);
        assert.equal(exitCode, 0);
        assert.deepEqual(JSON.parse(out.join('\n')).rows, []);
        const some = await run(['--since', '7d', '--bucket', '1m', '--filter', 'app_id==app-2', '--format', 'csv']);
        assert.equal(some.exitCode, 0);
        assert.deepEqual(some.out, [`bucket_start,requests,errors,input_tokens,output_tokens\r\n${iso(T0)},1,1,10,5`]);
      });

      test('a query the gateway refuses exits 2 with the field path; an unreachable gateway exits 1', async () => {
        const bad = await run(['--metrics', 'requests,bogus']);
        assert.equal(bad.exitCode, 2);
        assert.match(bad.err[0], /HTTP 400/);
        assert.match(bad.err[1], /^tollgate analytics: metrics\[1\]: /);
        const unauthorized = await run([], {});
        assert.equal(unauthorized.exitCode, 1);
        assert.match(unauthorized.err[0], /HTTP 401/);
      });
    });
  });
}
