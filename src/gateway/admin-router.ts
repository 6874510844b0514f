// A small router for the admin API: METHOD + path pattern with {params}, JSON in and out, errors with a field path.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';
import { CROSS_SITE_REQUEST, HOST_NOT_LOOPBACK, UNSUPPORTED_MEDIA_TYPE, bodyTypeProblem, crossSiteProblem, hostProblem } from './admin-browser-guard.js';
import { readBody } from './body.js';
import { GatewayError } from './errors.js';
import { hasDotSegment } from './safe-path.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import { isDatabaseUnavailable } from '../store/errors.js';
import { MAX_JSON_DEPTH, nestsDeeperThan } from '../lib/json-depth.js';
import { utf8Text } from '../lib/utf8.js';

export interface AdminRequest {
  method: string;
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  /** The caller presented the admin token (always false on a gateway without one: any Bearer header is then just a header). */
  authenticated: boolean;
  /** The raw body (read on demand, at most 10 MiB). */
  text(): Promise<string>;
  json(): Promise<unknown>;
}

export interface AdminResponse {
  status?: number;
  body?: unknown;
  /** Sent as it is (e.g. Prometheus text) instead of JSON; a big one already encoded, so sending it does not stall the loop. */
  text?: string | Buffer;
  contentType?: string;
  headers?: Record<string, string>;
}

export type AdminHandler = (req: AdminRequest) => AdminResponse | Promise<AdminResponse>;

const BEARER = /^bearer +(\S+) *$/i;
const BACKSLASH = /\\|%5c/i;

/** An admin API error: status plus a JSON body `{error: {message, code, details?}}`. */
export class AdminError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

interface Route {
  method: string;
  segments: string[];
  handler: AdminHandler;
  open: boolean;
  /** Its body may be YAML as well as JSON (apply, delete). */
  yaml: boolean;
}

const digest = (token: string): Buffer => createHash('sha256').update(token).digest();

export class AdminRouter {
  readonly #routes: Route[] = [];
  readonly #token: string | undefined;
  /** SHA-256 of the token, then of each previous one: compared whole, whatever a guess's length. */
  readonly #digests: Buffer[];
  /** Which previous tokens were used (logged once each). */
  readonly #previousUsed = new Set<number>();
  readonly #logger: Logger;
  /**
   * While true, a path no route takes is answered 503 `starting` rather than 404: the admin port opens before the
   * store has loaded, and the routes that use the store are added once it has.
   */
  starting = false;

  /**
   * `logger` hears of errors no handler expected (answered as a bare 500, so they would leave no trace otherwise).
   * `previous`: tokens still accepted while callers move to `token` (TOLLGATE_ADMIN_TOKEN_PREVIOUS).
   */
  constructor(token: string | undefined, logger: Logger = silentLogger, previous: readonly string[] = []) {
    this.#token = token || undefined;
    this.#digests = this.#token ? [this.#token, ...previous].map(digest) : [];
    this.#logger = logger;
  }

  /** `open` routes (health, metrics) need no token; `yaml` ones take a YAML body too. */
  add(method: string, pattern: string, handler: AdminHandler, opts: { open?: boolean; yaml?: boolean } = {}): void {
    this.#routes.push({ method, segments: pattern.split('/').filter(Boolean), handler, open: opts.open ?? false, yaml: opts.yaml ?? false });
  }

  /** The route for `method` on `path`, else the methods routes on that path take (for a 405's Allow). */
  #match(method: string, path: string): { route?: Route; params: Record<string, string>; allowed: Set<string> } {
    const parts = path.split('/').filter(Boolean);
    const allowed = new Set<string>();
    for (const route of this.#routes) {
      if (route.segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < parts.length && ok; i++) {
        const seg = route.segments[i];
        if (seg.startsWith('{')) {
          try {
            params[seg.slice(1, -1)] = decodeURIComponent(parts[i]);
          } catch {
            ok = false;
          }
        } else ok = seg === parts[i];
      }
      if (!ok) continue;
      if (route.method !== method) {
        allowed.add(route.method);
        continue;
      }
      return { route, params, allowed };
    }
    return { params: {}, allowed };
  }

  /** Whether the request carries the admin token; false when none is configured. */
  #tokenGiven(req: IncomingMessage): boolean {
    if (!this.#token) return false;
    // The scheme is case-insensitive (RFC 9110 §11.1), as the data plane reads it.
    const given = digest(BEARER.exec(req.headers.authorization ?? '')?.[1] ?? '');
    // Every token compared, the match or not: how long an answer takes tells nothing of which, or how close.
    let matched = -1;
    this.#digests.forEach((d, i) => {
      if (timingSafeEqual(given, d) && matched === -1) matched = i;
    });
    if (matched > 0 && !this.#previousUsed.has(matched)) {
      this.#previousUsed.add(matched);
      this.#logger.warn({ previousToken: matched }, 'an admin request used a previous admin token (TOLLGATE_ADMIN_TOKEN_PREVIOUS); move its callers to TOLLGATE_ADMIN_TOKEN');
    }
    return matched !== -1;
  }

  handle = (req: IncomingMessage, res: ServerResponse): void => {
    this.#dispatch(req).then(
      (out) => send(res, out),
      (err) => {
        const where = { method: req.method, path: req.url?.split('?')[0] };
        if (isDatabaseUnavailable(err)) {
          this.#logger.warn({ err, ...where }, 'admin request failed: the database is unavailable');
          send(res, DATABASE_UNAVAILABLE);
          return;
        }
        if (!(err instanceof AdminError) && !(err instanceof GatewayError)) this.#logger.error({ err, ...where }, 'admin request failed');
        send(res, errorResponse(err));
      },
    );
  };

  async #dispatch(req: IncomingMessage): Promise<AdminResponse> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const method = req.method ?? 'GET';
    const { route, params, allowed } = this.#match(method, url.pathname);
    // First, open routes included: a refusal here tells a page nothing of the API, and a rebound page would read /metrics.
    const crossSite = crossSiteProblem(req.headers);
    if (crossSite) throw new AdminError(403, CROSS_SITE_REQUEST, crossSite);
    // With a token the admin port listens beyond loopback under names of its own, and a page cannot present the token.
    const host = this.#token ? undefined : hostProblem(req.headers);
    if (host) throw new AdminError(403, HOST_NOT_LOOPBACK, host);
    const authenticated = this.#tokenGiven(req);
    // Without the token, every path but the open ones is a 401, existing or not: a 404 or 405 would map the API.
    if (!route?.open && this.#token && !authenticated) throw new AdminError(401, 'unauthorized', 'A valid admin token is required (Authorization: Bearer $TOLLGATE_ADMIN_TOKEN)');
    // new URL() resolved `entries/%2E%2E` to the map itself: a DELETE meant for an entry deleted its map.
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    const path = q === -1 ? target : target.slice(0, q);
    // A raw backslash too: the URL parser reads it as a slash (entries/x\..\.. resolved to the map). An encoded one
    // as well, as the data plane refuses it, so one rule holds for every port.
    if (hasDotSegment(path) || BACKSLASH.test(path)) {
      throw new AdminError(400, 'invalid_request', 'The path has a . or .. segment or a backslash (plain or percent-encoded), which the admin API refuses rather than resolve');
    }
    if (!route) {
      // RFC 9110 §15.5.6: a 405 lists the methods the resource takes.
      if (allowed.size > 0) return { ...errorResponse(new AdminError(405, 'method_not_allowed', `${method} is not allowed on ${url.pathname}`)), headers: { allow: [...allowed].join(', ') } };
      if (this.starting) return STARTING;
      throw new AdminError(404, 'not_found', `No admin resource at ${url.pathname}`);
    }
    // Any body, whether the route reads it or not: JSON, or YAML where the route takes it (apply, delete).
    const bodyType = bodyTypeProblem(req.headers, route.yaml ? 'json-or-yaml' : 'json');
    if (bodyType) throw new AdminError(415, UNSUPPORTED_MEDIA_TYPE, bodyType);
    let cached: Promise<Buffer> | undefined;
    const raw = () => (cached ??= readBody(req, 10 * 1024 * 1024, 30_000));
    const text = () => raw().then(bodyText);
    return route.handler({
      method,
      path: url.pathname,
      params,
      query: url.searchParams,
      headers: req.headers,
      authenticated,
      text,
      json: async () => {
        const jsonType = bodyTypeProblem(req.headers, 'json');
        if (jsonType) throw new AdminError(415, UNSUPPORTED_MEDIA_TYPE, jsonType);
        const body = await raw();
        const json = bodyText(body);
        let value: unknown;
        try {
          value = JSON.parse(json);
        } catch (err) {
          throw new AdminError(400, 'invalid_json', `The request body is not valid JSON: ${(err as Error).message}`);
        }
        // Handlers walk the value (validation, the storable-text check) recursively.
        if (nestsDeeperThan(body, MAX_JSON_DEPTH)) {
          throw new AdminError(400, 'invalid', 'The request body is invalid', [{ path: '(body)', message: `nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep` }]);
        }
        return value;
      },
    });
  }
}

/** A body's text; RFC 8259 §8.1 (and YAML 1.2) text is UTF-8, whatever charset a content-type names. */
function bodyText(body: Buffer): string {
  const text = utf8Text(body);
  if (text === undefined) throw new AdminError(400, 'invalid', 'The request body is invalid', [{ path: '(body)', message: 'is not UTF-8 text' }]);
  return text;
}

/** A database that cannot be reached is not a bug of the request or of tollgate: retry once it is back. */
const DATABASE_UNAVAILABLE: AdminResponse = {
  status: 503,
  headers: { 'retry-after': '1' },
  body: { error: { message: 'The database is unavailable; try again shortly', code: 'store_unavailable' } },
};

const STARTING: AdminResponse = {
  status: 503,
  headers: { 'retry-after': '1' },
  body: { error: { message: 'The gateway is starting: the store is still loading; try again shortly', code: 'starting' } },
};

/**
 * The most `details` an error answers with: one 10 MiB apply made 350,000 problems (a template listing as many refs
 * to an unknown kind), a 173 MB answer built on the event loop the data plane shares.
 */
const MAX_ERROR_DETAILS = 100;

/** The first MAX_ERROR_DETAILS details, then one saying how many more were found. */
function boundedDetails(details: unknown): unknown {
  if (!Array.isArray(details) || details.length <= MAX_ERROR_DETAILS) return details;
  return [...details.slice(0, MAX_ERROR_DETAILS), { path: '', message: `and ${details.length - MAX_ERROR_DETAILS} more, not listed` }];
}

function errorResponse(err: unknown): AdminResponse {
  if (err instanceof AdminError) return { status: err.status, body: { error: { message: err.message, code: err.code, ...(err.details ? { details: boundedDetails(err.details) } : {}) } } };
  if (err instanceof GatewayError) return { status: err.status, body: { error: { message: err.message, code: err.code } } };
  return { status: 500, body: { error: { message: 'Internal error', code: 'internal_error' } } };
}

function send(res: ServerResponse, out: AdminResponse): void {
  if (res.headersSent) return;
  const body = out.text ?? (out.body === undefined ? '' : JSON.stringify(out.body, null, 2));
  res.writeHead(out.status ?? 200, {
    'content-type': out.contentType ?? (out.text !== undefined ? 'text/plain; charset=utf-8' : 'application/json'),
    'content-length': Buffer.byteLength(body),
    ...out.headers,
  });
  res.end(body);
}
