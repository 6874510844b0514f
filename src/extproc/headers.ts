// Envoy's header maps to node:http's shape and back: pseudo-headers apart, repeated names joined as node:http joins
// them, values read from `value` or `raw_value` (Envoy's send_header_raw_value) and written the way they came.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { APPEND_IF_EXISTS_OR_ADD, OVERWRITE_IF_EXISTS_OR_ADD, type HeaderMap, type HeaderMutation, type HeaderValue, type HeaderValueOption } from './messages.js';

export interface ReadHeaders {
  headers: IncomingHttpHeaders;
  /** `:method`, `:path`, `:authority`, `:scheme`, `:status`, by name without the colon. */
  pseudo: Record<string, string>;
  /** Whether values came as raw_value bytes, so answers use the same field. */
  raw: boolean;
}

/** node:http decodes header bytes as latin1; so does this. */
export function headerText(h: HeaderValue): string {
  return h.raw_value && h.raw_value.length > 0 ? h.raw_value.toString('latin1') : (h.value ?? '');
}

export function readHeaderMap(map: HeaderMap | undefined): ReadHeaders {
  // Without a prototype, as node:http's req.headers: on a plain object a header named `constructor` or `toString`
  // found Object.prototype's member as its earlier value and became "function Object() { [native code] }, x".
  const headers: IncomingHttpHeaders = Object.create(null) as IncomingHttpHeaders;
  const pseudo: Record<string, string> = {};
  let raw = false;
  for (const h of map?.headers ?? []) {
    const key = h.key.toLowerCase();
    if (h.raw_value && h.raw_value.length > 0) raw = true;
    const value = headerText(h);
    if (key.startsWith(':')) {
      pseudo[key.slice(1)] = value;
      continue;
    }
    const prev = headers[key];
    if (prev === undefined) headers[key] = key === 'set-cookie' ? [value] : value;
    else if (Array.isArray(prev)) prev.push(value);
    else headers[key] = `${prev}${key === 'cookie' ? '; ' : ', '}${value}`;
  }
  if (pseudo.authority !== undefined && headers.host === undefined) headers.host = pseudo.authority;
  return { headers, pseudo, raw };
}

/** A header value in the field Envoy reads (raw_value when it sends raw values), replacing any existing one. */
export function setHeader(key: string, value: string, raw: boolean, append = false): HeaderValueOption {
  const header: HeaderValue = raw ? { key, raw_value: Buffer.from(value, 'latin1') } : { key, value };
  return { header, append_action: append ? APPEND_IF_EXISTS_OR_ADD : OVERWRITE_IF_EXISTS_OR_ADD };
}

/** Collects header changes for one answer; `build()` is undefined when there are none. */
export class MutationBuilder {
  readonly #raw: boolean;
  readonly #set: HeaderValueOption[] = [];
  readonly #remove: string[] = [];

  constructor(raw: boolean) {
    this.#raw = raw;
  }

  /** Several values (set-cookie) become one replacing entry and appended ones. */
  set(key: string, value: string | readonly string[]): this {
    if (typeof value === 'string') this.#set.push(setHeader(key, value, this.#raw));
    else value.forEach((v, i) => this.#set.push(setHeader(key, v, this.#raw, i > 0)));
    return this;
  }

  remove(key: string): this {
    this.#remove.push(key);
    return this;
  }

  build(): HeaderMutation | undefined {
    if (this.#set.length === 0 && this.#remove.length === 0) return undefined;
    return { ...(this.#set.length > 0 && { set_headers: this.#set }), ...(this.#remove.length > 0 && { remove_headers: this.#remove }) };
  }
}

function same(a: OutgoingHttpHeaders[string], b: OutgoingHttpHeaders[string]): boolean {
  if (Array.isArray(a) || Array.isArray(b)) return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => v === b[i]);
  return a === b || (a !== undefined && b !== undefined && String(a) === String(b));
}

/** The changes that turn `before` into `after` (both with lower-case names). */
export function diffHeaders(before: OutgoingHttpHeaders, after: OutgoingHttpHeaders, into: MutationBuilder): void {
  for (const name in after) {
    const v = after[name];
    if (v === undefined || same(before[name], v)) continue;
    into.set(name, Array.isArray(v) ? v : String(v));
  }
  for (const name in before) if (after[name] === undefined && before[name] !== undefined) into.remove(name);
}

/** node:http headers as an Envoy header map, in raw_value bytes as current Envoys send them; `extra` wins. */
export function headerMap(pseudo: [string, string][], headers: IncomingHttpHeaders | OutgoingHttpHeaders, extra: Record<string, string> = {}): HeaderMap {
  const out: HeaderValue[] = pseudo.map(([key, v]) => ({ key, raw_value: Buffer.from(v, 'latin1') }));
  const add = (key: string, v: string) => out.push({ key, raw_value: Buffer.from(v, 'latin1') });
  for (const name in headers) {
    if (name in extra) continue;
    const v = headers[name];
    if (Array.isArray(v)) for (const item of v) add(name, item);
    else if (v !== undefined) add(name, String(v));
  }
  for (const name in extra) add(name, extra[name]);
  return { headers: out };
}
