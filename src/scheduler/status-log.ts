// Which changes of an endpoint's status get a log line: each fall out of the pool, but a recovery only once it held.
import type { EndpointStatus } from './endpoint-state.js';

/**
 * How long an endpoint that was out must stay ready before its recovery is logged. A /metrics that fails three
 * times and answers once, by turns (a sick sidecar, an engine at the scrape deadline), logged about ten lines a
 * second: now one when it goes out, and one when it has held up this long, saying how often it came and went meanwhile.
 */
export const RECOVERY_HELD_MS = 2000;

export interface StatusLine {
  status: EndpointStatus;
  /** The status of the line before (pending for the first). */
  was: EndpointStatus;
  /** Times it came back and went out again since that line, unlogged. */
  flaps: number;
}

export class StatusLog {
  /** The status as the log last told it; pending until then, and ready after a first scrape (not worth a line). */
  #told: EndpointStatus = 'pending';
  /** Since when it is ready again after the log told it out; undefined while it is not. */
  #readySince: number | undefined;
  #flaps = 0;

  /** Its status `now`; returns the line to log, or null. */
  note(status: EndpointStatus, now: number): StatusLine | null {
    if (status === 'pending') return null;
    const told = this.#told;
    if (told === 'pending' || told === 'ready') {
      this.#told = status;
      return status === 'ready' ? null : { status, was: told, flaps: 0 };
    }
    if (status === 'ready') {
      this.#readySince ??= now;
      if (now - this.#readySince < RECOVERY_HELD_MS) return null;
    } else if (this.#readySince !== undefined) {
      // Back out before its recovery held: a flap, told with the next line.
      this.#readySince = undefined;
      this.#flaps++;
      return null;
    } else if (status === told) return null;
    const line = { status, was: told, flaps: this.#flaps };
    this.#told = status;
    this.#readySince = undefined;
    this.#flaps = 0;
    return line;
  }
}
