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

export type RedisTarget =
  | { kind: 'single'; url: string }
  | ({ kind: 'sentinel'; sentinels: RedisNode[]; name: string; db: number; sentinelUsername?: string; sentinelPassword?: string } & Credentials)
  | ({ kind: 'cluster'; nodes: RedisNode[] } & Credentials);

/** `--redis` that is none of the forms above; the message says what was expected. */
export class RedisUrlError extends Error {}

const SCHEME = /^(rediss?)(?:\+(sentinel|cluster))?:\/\//i;

export const REDIS_URL_FORMS = 'redis://, rediss://, redis+sentinel://HOST:PORT[,HOST:PORT...]/NAME[/DB][?sentinelPassword=...] or redis+cluster://HOST:PORT[,HOST:PORT...]';

/** What Sentinels themselves ask of a client (Bitnami's chart protects them with the primary's password by default). */
const SENTINEL_PARAMETERS = ['sentinelUsername', 'sentinelPassword'] as const;

/** Sentinel's and Redis's own default ports. */
const DEFAULT_PORT = { sentinel: 26379, cluster: 6379 } as const;

/**
 * @example parseRedisTarget('redis+sentinel://:secret@s1:26379,s2:26379/mymaster') // primary `mymaster`, password `secret`
 * @throws RedisUrlError
 */
export function parseRedisTarget(text: string): RedisTarget {
  const scheme = SCHEME.exec(text);
  if (!scheme) throw new RedisUrlError(`expected ${REDIS_URL_FORMS}`);
  const mode = scheme[2]?.toLowerCase() as 'sentinel' | 'cluster' | undefined;
  if (!mode) return { kind: 'single', url: text };
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
  const nodes = hosts.split(',').map((h) => node(h, DEFAULT_PORT[mode]));
  const path = pathText.split('/').slice(1);
  if (mode === 'cluster') {
    if (path.some((p) => p !== '')) throw new RedisUrlError('redis+cluster://... takes no path: a cluster has database 0 only');
    if (query !== undefined) throw new RedisUrlError('redis+cluster://... takes no query');
    return { kind: 'cluster', nodes, ...credentials };
  }
  const [name = '', db = '0', ...more] = path;
  if (name === '') throw new RedisUrlError('redis+sentinel://HOSTS/NAME: the primary group Sentinel watches is missing');
  if (more.some((p) => p !== '') || !/^\d{1,5}$/.test(db)) throw new RedisUrlError(`redis+sentinel://HOSTS/NAME/DB: expected a database number after the name, got "${pathText}"`);
  return { kind: 'sentinel', sentinels: nodes, name: decode(name), db: Number(db), ...credentials, ...sentinelParameters(query) };
}

/** `sentinelUsername` and `sentinelPassword`, each at most once; anything else is refused rather than ignored. */
function sentinelParameters(query: string | undefined): { sentinelUsername?: string; sentinelPassword?: string } {
  if (query === undefined) return {};
  const out: Record<string, string> = {};
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = decode(eq < 0 ? part : part.slice(0, eq));
    if (!(SENTINEL_PARAMETERS as readonly string[]).includes(key)) throw new RedisUrlError(`redis+sentinel://...: unknown parameter "${key}" (it takes ${SENTINEL_PARAMETERS.join(' and ')})`);
    if (key in out) throw new RedisUrlError(`redis+sentinel://...: ${key} given twice`);
    out[key] = decode(eq < 0 ? '' : part.slice(eq + 1));
  }
  return out;
}

function userinfo(text: string): { username?: string; password?: string } {
  if (text === '') return {};
  const colon = text.indexOf(':');
  const username = decode(colon < 0 ? text : text.slice(0, colon));
  const password = colon < 0 ? undefined : decode(text.slice(colon + 1));
  return { ...(username !== '' && { username }), ...(password !== undefined && password !== '' && { password }) };
}

function node(text: string, defaultPort: number): RedisNode {
  let url: URL;
  try {
    url = new URL(`redis://${text}`);
  } catch {
    throw new RedisUrlError(`"${text}" is no HOST:PORT`);
  }
  if (url.host !== text.toLowerCase() || url.hostname === '') throw new RedisUrlError(`"${text}" is no HOST:PORT`);
  // Brackets are URL syntax; the socket takes the bare IPv6 address.
  return { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: url.port === '' ? defaultPort : Number(url.port) };
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new RedisUrlError(`"${text}" is not percent-encoded correctly`);
  }
}
