// What became of --config reloads, outside the log: tollgate_config_reloads_total{outcome}, the time of the last load
// that applied, and the last reload's outcome for /readyz (Prometheus' own config_last_reload_* and Envoy's
// update_rejected answer the same question: is the running configuration the one in the files?).
import { Counter, Gauge, type Registry } from 'prom-client';

export type LastReload = { outcome: 'applied'; at: string } | { outcome: 'rejected'; at: string; problems: string[] };

export class ConfigReloads {
  readonly #reloads: Counter<'outcome'>;
  readonly #lastApplied: Gauge;
  readonly #now: () => number;
  #last: LastReload | null = null;

  /** The configuration the gateway started with counts as the first load that applied. */
  constructor(registry: Registry, now: () => number = Date.now) {
    this.#now = now;
    this.#reloads = new Counter({
      name: 'tollgate_config_reloads_total',
      help: 'Reloads of the --config files, by outcome: applied, or rejected (the last good configuration stays: invalid, or its API management objects could not be stored yet)',
      labelNames: ['outcome'],
      registers: [registry],
    });
    for (const outcome of ['applied', 'rejected']) this.#reloads.inc({ outcome }, 0);
    this.#lastApplied = new Gauge({
      name: 'tollgate_config_last_reload_success_timestamp_seconds',
      help: 'Unix time of the last configuration load that applied: the start, then each reload that applied',
      registers: [registry],
    });
    this.#lastApplied.set(now() / 1000);
  }

  /** The last reload's outcome (null before the first), for /readyz. */
  get last(): LastReload | null {
    return this.#last;
  }

  applied(): void {
    const now = this.#now();
    this.#reloads.inc({ outcome: 'applied' });
    this.#lastApplied.set(now / 1000);
    this.#last = { outcome: 'applied', at: new Date(now).toISOString() };
  }

  rejected(problems: readonly string[]): void {
    this.#reloads.inc({ outcome: 'rejected' });
    this.#last = { outcome: 'rejected', at: new Date(this.#now()).toISOString(), problems: [...problems] };
  }
}
