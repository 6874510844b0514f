// What `--redis` names: one server (`redis://`, `rediss://`, handed to ioredis as written), a primary that Sentinel
// watches (`redis+sentinel://`) or a Redis Cluster (`redis+cluster://`). A URL with several hosts has no WHATWG form
// (`new URL` refuses `a:1,b:2`), so the host list is split here and each host read by URL, which knows IPv6 brackets.

export interface RedisNode {
  host: string;
  port: number;
}

interface Credentials {
  username?: string;
  password?: string;
  /** `rediss+...`: TLS to every server named or found. */
  tls: boolean;
}

export type RedisTarget = (
  | { kind: 'single'; url: string }
  | ({ kind: 'sentinel'; sentinels: RedisNode[]; name: string; db: number; sentinelUsername?: string; sentinelPassword?: string } & Credentials)
  | ({ kind: 'cluster'; nodes: RedisNode[] } & Credentials)
) & {
  /**
   * `?keyPrefix=`: what begins every key tollgate writes (instead of `tollgate:`), so that gateways of several
   * deployments (staging and production, two teams) can share one Redis without sharing counters or caches.
   */
  keyPrefix?: string;
};

/** What begins every key tollgate writes to Redis when the URL names no `keyPrefix`. */
export const DEFAULT_KEY_PREFIX = 'tollgate:';

/** `--redis` that is none of the forms above; the message says what was expected. */
export class RedisUrlError extends Error {}

const SCHEME = /^(rediss?)(?:\+(sentinel|cluster))?:\/\//i;

export const REDIS_URL_FORMS = 'redis://, rediss://, redis+sentinel://HOST:PORT[,HOST:PORT...]/NAME[/DB][?sentinelPassword=...] or redis+cluster://HOST:PORT[,HOST:PORT...]';

/**
 * The parameters each form takes: the key prefix, and what Sentinels themselves ask of a client (Bitnami's chart
 * protects them with the primary's password by default). One server's other parameters are ioredis options, left to it.
 */
const PARAMETERS = { sentinel: ['keyPrefix', 'sentinelUsername', 'sentinelPassword'], cluster: ['keyPrefix'] } as const;

/** Letters, digits and `: _ . - /`: no `{` or `}`, which would change which cluster slot a key hashes to. */
const KEY_PREFIX = /^[A-Za-z0-9:_.\-/]{1,64}$/;

/** Sentinel's and Redis's own default ports. */
const DEFAULT_PORT = { sentinel: 26379, cluster: 6379 } as const;

/**
 * @example parseRedisTarget('redis+sentinel://:secret@s1:26379,s2:26379/mymaster') // primary `mymaster`, password `secret`
 * @throws RedisUrlError
 */
export function parseRedisTarget(text: string): RedisTarget {
  const target = parseTarget(text);
  if (target.keyPrefix !== undefined && !KEY_PREFIX.test(target.keyPrefix)) throw new RedisUrlError('keyPrefix must be 1 to 64 letters, digits and : _ . - /');
  return target;
}

/** Why `text` names no Redis tollgate can use, or undefined when it does (for a flag's one-line refusal). */
export function redisUrlProblem(text: string): string | undefined {
  try {
    parseRedisTarget(text);
    return undefined;
  } catch (err) {
    if (err instanceof RedisUrlError) return err.message;
    throw err;
  }
}

function parseTarget(text: string): RedisTarget {
  const scheme = SCHEME.exec(text);
  if (!scheme) throw new RedisUrlError(`expected ${REDIS_URL_FORMS}`);
  const mode = scheme[2]?.toLowerCase() as 'sentinel' | 'cluster' | undefined;
  if (!mode) return singleServer(text);
  const rest = text.slice(scheme[0].length);
  const authorityEnd = rest.search(/[/?#]/);
  const authority = authorityEnd < 0 ? rest : rest.slice(0, authorityEnd);
  const tail = authorityEnd < 0 ? '' : rest.slice(authorityEnd);
  if (tail.includes('#')) throw new RedisUrlError(`${scheme[0]}... takes no fragment`);
  const queryStart = tail.indexOf('?');
  const pathText = queryStart < 0 ? tail : tail.slice(0, queryStart);
  const query = queryStart < 0 ? undefined : tail.slice(queryStart + 1);
  const at = authority.lastIndexOf('@');
  const credentials = { ...userinfo(at < 0 ? '' : authority.slice(0, at)), tls: scheme[1].toLowerCase() === 'rediss' };
  const hosts = authority.slice(at + 1);
  if (hosts === '') throw new RedisUrlError(`${scheme[0]}... needs at least one HOST:PORT`);
  const nodes = hosts.split(',').map((h) => node(h, DEFAULT_PORT[mode], text.includes('@')));
  const path = pathText.split('/').slice(1);
  const parameters = parametersOf(query, `redis+${mode}://...`, PARAMETERS[mode]);
  if (mode === 'cluster') {
    if (path.some((p) => p !== '')) throw new RedisUrlError('redis+cluster://... takes no path: a cluster has database 0 only');
    return { kind: 'cluster', nodes, ...credentials, ...parameters };
  }
  const [name = '', db = '0', ...more] = path;
  if (name === '') throw new RedisUrlError('redis+sentinel://HOSTS/NAME: the primary group Sentinel watches is missing');
  if (more.some((p) => p !== '') || !/^\d{1,5}$/.test(db)) throw new RedisUrlError(`redis+sentinel://HOSTS/NAME/DB: expected a database number after the name, got "${pathText}"`);
  return { kind: 'sentinel', sentinels: nodes, name: decode(name), db: Number(db), ...credentials, ...parameters };
}

/** One server's URL goes to ioredis as written, but for tollgate's own parameter, which ioredis would take as its option. */
function singleServer(text: string): RedisTarget {
  const queryStart = text.indexOf('?');
  if (queryStart < 0) return { kind: 'single', url: checkedUrl(text) };
  const hashStart = text.indexOf('#', queryStart);
  const query = text.slice(queryStart + 1, hashStart < 0 ? undefined : hashStart);
  const [own, others] = partition(query.split('&'), (part) => decode(part.split('=')[0]) === 'keyPrefix');
  const url = text.slice(0, queryStart) + (others.length > 0 ? `?${others.join('&')}` : '') + (hashStart < 0 ? '' : text.slice(hashStart));
  return { kind: 'single', url: checkedUrl(url), ...parametersOf(own.join('&'), 'redis://...', ['keyPrefix']) };
}

/** `url` if it parses (as ioredis will parse it), else why not; without `new URL`'s bare "Invalid URL", exit code 1. */
function checkedUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new RedisUrlError(`not a URL${url.includes('@') ? ` (${ENCODE_CREDENTIALS})` : ''}`);
  }
  // ioredis decodes them, and a bad `%` was its bare "URI malformed", exit code 1.
  decode(parsed.username, 'the user');
  decode(parsed.password, 'the password');
  return url;
}

function partition<T>(items: T[], test: (item: T) => boolean): [T[], T[]] {
  return [items.filter(test), items.filter((item) => !test(item))];
}

/** The `allowed` parameters of `query`, each at most once; anything else is refused rather than ignored. */
function parametersOf<K extends string>(query: string | undefined, form: string, allowed: readonly K[]): Partial<Record<K, string>> {
  const out: Partial<Record<K, string>> = {};
  for (const part of query?.split('&') ?? []) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = decode(eq < 0 ? part : part.slice(0, eq)) as K;
    if (!allowed.includes(key)) throw new RedisUrlError(`${form}: unknown parameter "${key}" (it takes ${allowed.join(', ')})`);
    if (key in out) throw new RedisUrlError(`${form}: ${key} given twice`);
    out[key] = decode(eq < 0 ? '' : part.slice(eq + 1), /password/i.test(key) ? key : undefined);
  }
  return out;
}

function userinfo(text: string): { username?: string; password?: string } {
  if (text === '') return {};
  const colon = text.indexOf(':');
  const username = decode(colon < 0 ? text : text.slice(0, colon), 'the user');
  const password = colon < 0 ? undefined : decode(text.slice(colon + 1), 'the password');
  return { ...(username !== '' && { username }), ...(password !== undefined && password !== '' && { password }) };
}

/**
 * What a URL that does not parse says: a password holding `/ ? # @` cuts the URL elsewhere than meant (a base64
 * password often does), and a piece of it must then not be shown as a host.
 */
const ENCODE_CREDENTIALS = 'a user or password holding / ? # @ or : must be percent-encoded (%2F %3F %23 %40 %3A)';

function node(text: string, defaultPort: number, credentialed: boolean): RedisNode {
  const refused = () => new RedisUrlError(credentialed ? `a host is no HOST:PORT (${ENCODE_CREDENTIALS})` : `"${text}" is no HOST:PORT`);
  let url: URL;
  try {
    url = new URL(`redis://${text}`);
  } catch {
    throw refused();
  }
  // Host names are compared as DNS compares them; a URL of this scheme keeps their case.
  if (url.host.toLowerCase() !== text.toLowerCase() || url.hostname === '' || url.port === '0') throw refused();
  // Brackets are URL syntax; the socket takes the bare IPv6 address.
  return { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: url.port === '' ? defaultPort : Number(url.port) };
}

/** `text` percent-decoded; a secret's refusal names it (`secret`) rather than showing it. */
function decode(text: string, secret?: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new RedisUrlError(`${secret ?? `"${text}"`} is not percent-encoded correctly`);
  }
}
