// GatewaySettings: every runtime setting with its default. One document of this kind may exist; without one, all defaults apply.
import { z } from 'zod';
import { durationMs, longDurationMs, parseDuration, timerMsOr } from '../lib/duration.js';
import { analyticsSettingsSpec } from '../analytics/settings.js';
import { tracingSettingsSpec } from '../telemetry/tracing-settings.js';
import { LOG_LEVELS } from '../lib/logger.js';
import { readCaFile } from '../lib/tls-files.js';

// zod 4 returns a default as it is (no transform), so defaults are given already in milliseconds.
const dur = (def: string) => durationMs.default(parseDuration(def));

/**
 * The upstream settings with `ca`, caFile's certificates: read here, at load and on every reload, so a file that cannot
 * be used is a configuration error naming the field, and a changed file (compared by content, as the other settings
 * are) replaces the upstream connections.
 */
function withCaBundle<U extends { caFile?: string }>(upstream: U, ctx: z.RefinementCtx): U & { ca?: string } {
  if (upstream.caFile === undefined) return upstream;
  try {
    return { ...upstream, ca: readCaFile(upstream.caFile).toString('latin1') };
  } catch (err) {
    ctx.addIssue({ code: 'custom', path: ['caFile'], message: (err as Error).message });
    return z.NEVER;
  }
}

export const gatewaySettingsSpec = z
  .object({
    server: z
      .object({
        /** Largest accepted request body, in bytes (10 MiB). */
        maxBodyBytes: z.number().int().positive().default(10 * 1024 * 1024),
        /** Time a client has to send all request headers. */
        headersTimeout: dur('10s'),
        /** Time a client has to send the whole request body. */
        bodyTimeout: timerMsOr('30s'),
        keepAliveTimeout: timerMsOr('5s'),
        /** How long in-flight requests may run on after SIGTERM. */
        shutdownGracePeriod: dur('30s'),
      })
      .strict()
      .prefault({}),
    upstream: z
      .object({
        connectTimeout: dur('5s'),
        /** Until the first response byte from the model server (overridable per InferenceModel). */
        firstByteTimeout: timerMsOr('60s'),
        /** Until the whole response has arrived (overridable per InferenceModel). */
        responseTimeout: timerMsOr('10m'),
        /** Further endpoints tried when one fails before any byte reached the client. */
        maxRetries: z.number().int().min(0).max(10).default(2),
        connectionsPerEndpoint: z.number().int().positive().default(512),
        /** Verify TLS certificates of https endpoints. */
        tlsRejectUnauthorized: z.boolean().default(true),
        /**
         * A PEM bundle of private CAs that https endpoints are verified against beside Node's default roots (a path,
         * relative to the working directory); `ca` holds its certificates once read (withCaBundle).
         */
        caFile: z.string().min(1).optional(),
      })
      .strict()
      .transform(withCaBundle)
      .prefault({}),
    scheduler: z
      .object({
        scrapeInterval: timerMsOr('50ms'),
        /**
         * Scrapes a second, all endpoints together: past scrapeInterval × this many endpoints, each is scraped less
         * often (scrape-budget.ts). A scrape costs ~0.3 ms of the event loop the requests share: 1000 a second is ~30 %.
         */
        maxScrapesPerSecond: z.number().int().positive().default(1000),
        /** Endpoints whose metrics are older than this are not picked: at least two scrapeIntervals (checked below). */
        staleAfter: timerMsOr('2s'),
        saturation: z
          .object({
            queueDepthThreshold: z.number().min(0).default(5),
            kvCacheThreshold: z.number().min(0).max(1).default(0.8),
            metricsFreshness: dur('200ms'),
          })
          .strict()
          .prefault({}),
        /**
         * Stored Responses API answers whose endpoint tollgate remembers, so that follow-ups (previous_response_id) and
         * reads of them reach the model server that stores them; the least recently used are forgotten first. 0: none.
         */
        storedResponses: z.number().int().min(0).max(10_000_000).default(100_000),
        flowControl: z
          .object({
            maxQueueLength: z.number().int().positive().default(1000),
            /**
             * Request body bytes the queue may hold (256 MiB): a waiting request keeps its body, so the length alone
             * let 1000 bodies of maxBodyBytes (10 GiB and more) wait. Over it, the same 503 queue_full and
             * displacement as maxQueueLength.
             */
            maxQueueBytes: z.number().int().positive().default(256 * 1024 * 1024),
            /** 0s: a request that would have to wait is refused at once (503 queue_timeout). */
            maxWait: dur('30s'),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .superRefine((s, ctx) => {
        // Metrics age up to an interval, its jitter (10 %) and the scrape's own time before the next one lands: with
        // staleAfter at or under the interval, healthy endpoints went stale between scrapes and requests got 503.
        if (s.staleAfter < 2 * s.scrapeInterval) {
          ctx.addIssue({ code: 'custom', path: ['staleAfter'], message: `must be at least twice scrapeInterval (${s.scrapeInterval} ms), or endpoints go stale between scrapes` });
        }
      })
      .prefault({}),
    logging: z
      .object({
        level: z.enum(LOG_LEVELS).default('info'),
        accessLog: z.boolean().default(true),
        /** Prompt and completion text never reach logs unless this is on. */
        logPrompts: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    metrics: z
      .object({
        /**
         * The per-request series (inference_objective_*, tollgate_pool_*, tollgate_requests_total,
         * tollgate_policy_violations_total); pool, picker, pipeline and counter-store figures stay on /metrics either way.
         */
        requests: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    analytics: analyticsSettingsSpec,
    tracing: tracingSettingsSpec,
    audit: z
      .object({
        /** Audit rows older than this are deleted (at start and hourly); without it the log is kept whole. */
        retention: longDurationMs.pipe(z.number().min(parseDuration('1d'), 'must be at least 1d').max(parseDuration('36500d'), 'must be at most 36500d (leave it out to keep every row)')).optional(),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type GatewaySettings = z.output<typeof gatewaySettingsSpec>;

export const DEFAULT_SETTINGS: GatewaySettings = gatewaySettingsSpec.parse({});

/**
 * The settings a reload cannot change in a running process (the README's configuration reference marks them): the
 * analytics spool directory is claimed and replayed at start. Every other field applies on reload.
 */
export const RESTART_REQUIRED_SETTINGS = ['analytics.enabled', 'analytics.directory'] as const;

type Sections = Record<string, Record<string, unknown>>;

/** The restart-required fields whose value differs between `running` and `next` (names only: values may be secrets). */
export function restartRequiredChanges(running: GatewaySettings, next: GatewaySettings): string[] {
  const at = (s: GatewaySettings, path: string) => path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], s);
  return RESTART_REQUIRED_SETTINGS.filter((path) => JSON.stringify(at(running, path)) !== JSON.stringify(at(next, path)));
}

/**
 * `next` with the restart-required fields at their `running` values: the settings a reload installs. Read from the
 * file, a value the process does not run with misled whatever read it (`analytics.enabled: false` made the data plane
 * stop asking streams for their usage, while the pipeline, still running, recorded them without tokens).
 */
export function keepRestartRequired(running: GatewaySettings, next: GatewaySettings): GatewaySettings {
  const from = running as unknown as Sections;
  const kept = { ...next } as unknown as Sections;
  for (const path of RESTART_REQUIRED_SETTINGS) {
    const [section, field] = path.split('.');
    kept[section] = { ...kept[section], [field]: from[section][field] };
  }
  return kept as unknown as GatewaySettings;
}
