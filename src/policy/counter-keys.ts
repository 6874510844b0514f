// Counter key names, in one place so the policies that count and the self-service report that reads agree.
// A key is `apim:<kind>:<name>:<identifier>` (product quotas: `apim:pq:<operation set>:<identifier variable>:<identifier>`),
// then for a quota its window. Every part before the identifier holds no colon (names are escaped; operation-set names
// are manifest names, which cannot hold one), and a window's part holds none either: whatever an identifier holds (it is a client's choice), two counters never share a key.
import { createHash } from 'node:crypto';
import type { QuotaWindow } from './quota-window.js';
import type { QuotaWindowType } from './quota-usage.js';

/**
 * Identifiers up to this many UTF-8 bytes stay in the key as they are (keys stay readable, and existing Redis keys
 * keep their names). A longer one is a client's choice (a 16 KiB header) that every counter would hold for its window.
 */
const MAX_VERBATIM_BYTES = 64;

/**
 * Keys made are remembered, so a request does not build a fresh string (which each store lookup would hash again):
 * up to this many per policy and operation set, then forgotten all at once, as identifiers are a client's choice.
 * Only identifiers short enough to be in the key as they are: a long one is no key to hold on to.
 */
const MAX_REMEMBERED = 10_000;

function remembered(make: (identifier: string) => string): (identifier: string) => string {
  const keys = new Map<string, string>();
  return (identifier) => {
    if (identifier.length > MAX_VERBATIM_BYTES) return make(identifier);
    let key = keys.get(identifier);
    if (key === undefined) {
      if (keys.size >= MAX_REMEMBERED) keys.clear();
      key = make(identifier);
      keys.set(identifier, key);
    }
    return key;
  };
}

/**
 * The identifier as it appears in a key: itself, or `sha256:` and its digest in hex when longer than 64 bytes. The
 * digest form is 71 bytes, longer than any identifier kept as it is, so the two never name the same counter.
 * @example keyPart('app-1') → 'app-1'; keyPart('x'.repeat(4096)) → 'sha256:2f5a…' (71 characters)
 */
function keyPart(identifier: string): string {
  if (Buffer.byteLength(identifier) <= MAX_VERBATIM_BYTES) return identifier;
  // Of the UTF-16 code units: UTF-8 would turn every lone surrogate (a JSON claim may hold one) into the same U+FFFD.
  return `sha256:${createHash('sha256').update(identifier, 'utf16le').digest('hex')}`;
}

/**
 * A name part without colons: `%` and `:` percent-encoded, anything else as it is (a manifest name has neither, so its
 * keys keep their names). A Quota's sharedName is free text: `users:budget` named the counter of Quota `users` for
 * identifier `budget:…`, which a client sending that header could then spend.
 */
function namePart(name: string): string {
  return name.replace(/[%:]/g, (c) => (c === '%' ? '%25' : '%3A'));
}

/**
 * A policy's own counters, per identifier value: `kind` is a short tag per policy type, `name` its manifest name (or
 * Quota's sharedName). Made once per policy.
 * @example policyKeys('q', 'per-app')('app-1') → 'apim:q:per-app:app-1'
 */
export function policyKeys(kind: string, name: string): (identifier: string) => string {
  const prefix = `apim:${kind}:${namePart(name)}:`;
  return remembered((identifier) => prefix + keyPart(identifier));
}

/**
 * Product quotas (`pq`: requests, `pt`: tokens), per operation set and value of the identifier `variable` (the app by
 * default). The variable is part of the key: a Quota counted per `request.header.x-user` and the default product quota
 * (per app) on the same operation set shared a counter whenever a header value was an app's id.
 * @example productKeys('pq', 'developer.app.id')('gold', 'app-1') → 'apim:pq:gold:developer.app.id:app-1'
 */
export function productKeys(kind: 'pq' | 'pt', variable: string): (operationSet: string, identifier: string) => string {
  const tail = `:${namePart(variable)}:`;
  // Per operation set, of which a configuration has a bounded number.
  const sets = new Map<string, (identifier: string) => string>();
  return (operationSet, identifier) => {
    let keyOf = sets.get(operationSet);
    // Operation-set names are manifest names: no colons.
    if (!keyOf) sets.set(operationSet, (keyOf = remembered((id) => `apim:${kind}:${operationSet}${tail}${keyPart(id)}`)));
    return keyOf(identifier);
  };
}

/**
 * One fixed window's counter, by its start and its end: a window of another length that starts at the same instant
 * (the interval or time unit changed at the top of the hour) is another counter, not the old window's count and end.
 * @example windowKey('apim:q:per-app:app-1', { startMs: 0, endMs: 3_600_000 }) → 'apim:q:per-app:app-1:0-3600000'
 */
export function windowKey(base: string, window: QuotaWindow): string {
  return `${base}:${window.startMs}-${window.endMs}`;
}

/**
 * windowKey, remembered per counter for its latest window (bounded as the keys above): for the `base` of policyKeys
 * or productKeys, one of those remembered strings, whose hash is already known.
 * @example const keyOf = windowKeys(); keyOf('apim:q:per-app:app-1', { startMs: 0, endMs: 3_600_000 })
 */
export function windowKeys(): (base: string, window: QuotaWindow) => string {
  const latest = new Map<string, { startMs: number; endMs: number; key: string }>();
  return (base, window) => {
    const known = latest.get(base);
    if (known?.startMs === window.startMs && known.endMs === window.endMs) return known.key;
    const key = windowKey(base, window);
    if (known) {
      known.startMs = window.startMs;
      known.endMs = window.endMs;
      known.key = key;
    } else {
      if (latest.size >= MAX_REMEMBERED) latest.clear();
      latest.set(base, { startMs: window.startMs, endMs: window.endMs, key });
    }
    return key;
  };
}

/**
 * A rolling or flexi window's counter, by the window's length: a changed interval or time unit starts a new one (a
 * flexi window kept the old length's end: a day's, after a change to a minute), and the three window types never
 * share one under a sharedName.
 * @example periodKey('apim:q:per-app:app-1', 'flexi', 60_000) → 'apim:q:per-app:app-1:f60000'
 */
export function periodKey(base: string, type: Exclude<QuotaWindowType, 'fixed'>, periodMs: number): string {
  return `${base}:${type === 'flexi' ? 'f' : 'r'}${periodMs}`;
}
