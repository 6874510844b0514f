// GET /v1/analytics/stats on the admin API: usage figures by time bucket and dimension, as JSON or CSV.
import { AdminError, type AdminResponse, type AdminRouter } from '../gateway/admin-router.js';
import { QueueFullError } from '../lib/concurrency-limit.js';
import { WorkerExitedError } from '../lib/worker-calls.js';
import { AnalyticsRecords, type Database } from '../store/index.js';
import { toCsv } from './stats-csv.js';
import { MAX_ROWS, parseStatsQuery, statsColumns } from './stats-query.js';
import { openStatsRunner, StatsTimeoutError, type StatsRunner, type StatsRunnerOptions } from './stats-runner.js';
import type { StatsResult } from './stats-sql.js';
import { isoAtOffset, offsetText } from './stats-time.js';

export interface AnalyticsRouteDeps {
  db: Database;
  /** How the queries run (tests shorten the statement timeout). */
  stats?: StatsRunnerOptions;
}

/**
 * The query's thread could not start or exited (a process out of descriptors or memory): a later query starts another,
 * so the client may ask again.
 */
function statsUnavailable(err: Error): AdminResponse {
  return { status: 503, headers: { 'retry-after': '1' }, body: { error: { message: `The query could not run (${err.message}); try again shortly`, code: 'stats_unavailable' } } };
}

/** Every query slot taken and the waiting line full: a busy moment, not a bad query, so worth a retry. */
const STATS_BUSY: AdminResponse = {
  status: 503,
  headers: { 'retry-after': '1' },
  body: { error: { message: 'Too many analytics queries are running or waiting; try again shortly', code: 'stats_busy' } },
};

/**
 * `lagSeconds` is how long ago the newest stored request arrived, so a reader can tell a quiet hour from
 * a pipeline that is behind (the spool's own lag is the `tollgate_analytics_lag_seconds` metric).
 * Returns the runner of the queries, whose close() ends its thread (an idle one ends by itself).
 * @example registerAnalyticsRoutes(gateway.admin, { db });
 */
export function registerAnalyticsRoutes(router: AdminRouter, deps: AnalyticsRouteDeps): StatsRunner {
  const records = new AnalyticsRecords(deps.db);
  const stats = openStatsRunner(deps.db, deps.stats);
  router.add('GET', '/v1/analytics/stats', async (req) => {
    const parsed = parseStatsQuery(req.query);
    if ('problems' in parsed) throw new AdminError(400, 'invalid', 'The query parameters are invalid', parsed.problems);
    const q = parsed.query;
    let result: StatsResult;
    try {
      result = await stats.run(q);
    } catch (err) {
      if (err instanceof QueueFullError) return STATS_BUSY;
      if (err instanceof WorkerExitedError) return statsUnavailable(err);
      // No retry-after: asked again, it would most likely run as long; it must ask for less.
      if (err instanceof StatsTimeoutError) {
        throw new AdminError(503, 'stats_timeout', `The query was stopped: ${err.message}; ask for a shorter range, fewer groupBy dimensions or no percentiles`);
      }
      throw err;
    }
    if ('tooManyRows' in result) {
      // Without groupBy the rows are the non-empty buckets.
      const path = q.groupBy.length > 0 ? 'groupBy' : 'bucket';
      const message = `this query makes ${result.tooManyRows} rows, more than the ${MAX_ROWS} an answer holds; use a larger bucket or fewer groupBy dimensions`;
      throw new AdminError(400, 'invalid', 'The query parameters are invalid', [{ path, message }]);
    }
    const { rows } = result;
    // After the query, not beside it: beside it, every request waiting its turn took a pooled connection outside the
    // bound.
    const newest = await records.newestTime();
    const newestRecordAt = newest === undefined ? null : new Date(newest).toISOString();
    const lagSeconds = newest === undefined ? null : Math.max(0, Date.now() - newest) / 1000;
    if (q.format === 'csv') {
      // CSV has no room for them beside the rows: the freshness figures travel as headers ('none' without records).
      const headers = { 'x-tollgate-newest-record-at': newestRecordAt ?? 'none', 'x-tollgate-lag-seconds': lagSeconds === null ? 'none' : String(lagSeconds) };
      return { text: toCsv(statsColumns(q.groupBy, q.metrics), rows), contentType: 'text/csv; charset=utf-8', headers };
    }
    return {
      body: {
        from: isoAtOffset(q.from, q.offsetMinutes),
        to: isoAtOffset(q.to, q.offsetMinutes),
        bucket: q.bucket,
        tzo: offsetText(q.offsetMinutes),
        groupBy: q.groupBy,
        metrics: q.metrics,
        rows,
        newestRecordAt,
        lagSeconds,
      },
    };
  });
  return stats;
}
