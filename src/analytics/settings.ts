// analyticsSettingsSpec: the `analytics` section of GatewaySettings (spool directory, batching, retention, disk budget).
import { z } from 'zod';
import { longDurationMs, parseDuration, timerMsOr } from '../lib/duration.js';


export const analyticsSettingsSpec = z
  .object({
    /** Usage records feed billing: turn them off only where no one bills or reports (benchmarks, scratch setups). */
    enabled: z.boolean().default(true),
    /**
     * Where records wait (write-ahead segment files) until they are stored in the database. One process per directory:
     * its lock (spool-lock.ts) is refreshed every 2 s, and taken over only from a process seen dead, or one of another
     * PID namespace or host whose lock has not been refreshed for 10 s.
     */
    directory: z.string().min(1).default('./.tollgate/analytics'),
    /** How often spooled records are written to the database. */
    flushInterval: timerMsOr('1s'),
    /** Records per INSERT statement (at most 1000: SQLite allows 32766 bound values, a row has 26). */
    batchSize: z.number().int().min(1).max(1000).default(500),
    /** Database records older than this are deleted (checked hourly). */
    // Compared with record times, never a timer, so it may be longer than a timer's 24d; at least 1h, since 0
    // deleted every stored record (the billing data) at start.
    retention: longDurationMs
      .pipe(z.number().min(parseDuration('1h'), 'must be at least 1h (0 does not turn it off: it deletes every record)').max(parseDuration('36500d'), 'must be at most 36500d'))
      .default(parseDuration('30d')),
    /** Disk the spool may use; beyond it new records are dropped, counted and logged (1 GiB). */
    maxDiskBytes: z.number().int().positive().default(1024 * 1024 * 1024),
    /** A segment file is closed and a new one started at this size (16 MiB); committed segments are deleted. */
    segmentBytes: z.number().int().min(4096).default(16 * 1024 * 1024),
    /**
     * A database write (or retention delete) that has not answered by then counts as failed and is retried, over a
     * new connection: the writer thread that waits for it is replaced.
     */
    writeTimeout: timerMsOr('30s'),
  })
  .strict()
  .prefault({});

export type AnalyticsSettings = z.output<typeof analyticsSettingsSpec>;
