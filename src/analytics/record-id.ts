// Record ids: UUIDv7 (RFC 9562), so ids sort by time and never collide across replicas or replays.
import { randomBytes, randomInt } from 'node:crypto';

/** Two hex digits per byte value: the per-record part of an id is two lookups, not a number formatted per record. */
const HEX2 = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * RFC 9562 §6.2 method 1: a 42-bit counter in rand_a and the top of rand_b, then 32 random bits drawn once per
 * process. The counter is never reset, so a wall clock stepped back cannot repeat an id of this process; it starts at
 * a random value below 2^41, so it cannot wrap in a process's life (2^41 records) and processes whose tails happen to
 * match still count in different ranges. `high` is its top 26 bits, `low` the 16 that change with each record.
 */
let high = randomInt(2 ** 25);
let low = randomInt(2 ** 16);
const tail = randomBytes(4).toString('hex');

/** The id text before the counter's low 16 bits, for the millisecond and `high` it was made for. */
let headMs = -1;
let headHigh = -1;
let head = '';

/**
 * The 48-bit millisecond timestamp, version 7, the counter (with the variant bits 10 in the fourth group), the
 * process's random tail. Within a process ids made in one millisecond sort in the order they were made.
 * @example newRecordId() // '0190a5b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b'
 */
export function newRecordId(now: number = Date.now()): string {
  if (++low === 0x10000) {
    low = 0;
    high = (high + 1) % 2 ** 26;
  }
  if (now !== headMs || high !== headHigh) {
    const t = now.toString(16).padStart(12, '0');
    // high's bits: 12 for rand_a, 2 after the variant, 12 more; `| 0x8000` sets the variant above them.
    const a = (high >>> 14).toString(16).padStart(3, '0');
    const b = (0x8000 | (high & 0x3fff)).toString(16);
    head = `${t.slice(0, 8)}-${t.slice(8)}-7${a}-${b}-`;
    headMs = now;
    headHigh = high;
  }
  return head + HEX2[low >>> 8] + HEX2[low & 0xff] + tail;
}

/** The creation time (epoch ms) a record id carries. */
export function recordIdTime(id: string): number {
  return parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}
