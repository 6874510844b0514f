// GatewaySettings `audit.retention`: the audit log's rows older than it are deleted at start and every hour after.
// Without it the log is kept whole, as before the setting existed: what an audit trail must keep, and for how long, is
// the operator's compliance choice (Kong keeps 30 days by default), never one an upgrade should make for them.
import type { Logger } from '../lib/logger.js';
import type { AuditLog } from '../store/audit-log.js';

const SWEEP_EVERY_MS = 60 * 60 * 1000;

export class AuditRetention {
  readonly #audit: AuditLog;
  readonly #logger: Logger;
  #retentionMs: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #closed = false;

  constructor(audit: AuditLog, retentionMs: number | undefined, logger: Logger) {
    this.#audit = audit;
    this.#logger = logger;
    this.#retentionMs = retentionMs;
  }

  /** Sweeps now, then every hour. */
  start(): void {
    void this.sweep();
    this.#timer = setInterval(() => void this.sweep(), SWEEP_EVERY_MS).unref();
  }

  /**
   * A reload's retention: a sweep under way stops at its next chunk, and one with the new retention starts once it
   * has (none without one).
   */
  reconfigure(retentionMs: number | undefined): void {
    if (retentionMs === this.#retentionMs) return;
    this.#retentionMs = retentionMs;
    if (this.#timer) void (this.#running ?? Promise.resolve()).then(() => this.sweep());
  }

  /** Deletes what is older than the retention (nothing without one); one sweep at a time. Never rejects. */
  sweep(): Promise<void> {
    const keepMs = this.#retentionMs;
    if (keepMs === undefined || this.#closed) return Promise.resolve();
    this.#running ??= Promise.resolve()
      .then(() => this.#audit.deleteOlderThan(keepMs, () => this.#closed || this.#retentionMs !== keepMs))
      .then(
        (deleted) => {
          if (deleted > 0) this.#logger.info({ deleted, retention_ms: keepMs }, 'deleted audit log rows older than audit.retention');
        },
        (err: unknown) => this.#logger.warn({ err }, 'the audit log retention sweep failed; it is tried again within the hour'),
      )
      .finally(() => (this.#running = undefined));
    return this.#running;
  }

  /** Stops sweeping; waits for a sweep under way to end its chunk. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#running;
  }
}
