// Shared by the API-management end-to-end tests: admin-API and data-plane calls, a developer + app + key in one call, polling.
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request, type Dispatcher } from 'undici';
import { AdminRouter } from '../../src/gateway/admin-router.js';
import { registerApimAdminRoutes } from '../../src/apim/admin-routes.js';

export interface ServedAdmin {
  url: string;
  close(): Promise<void>;
}

/** An admin router alone on a loopback port (no gateway around it). */
export async function serveAdmin(router: AdminRouter): Promise<ServedAdmin> {
  const server = createServer(router.handle).listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

/** The API-management admin routes over `db` alone (no gateway, nothing declared in files) on a loopback port; `more` adds routes. */
export function serveApimAdmin(db: Parameters<typeof registerApimAdminRoutes>[1]['db'], more?: (router: AdminRouter) => void): Promise<ServedAdmin> {
  const router = new AdminRouter(undefined);
  registerApimAdminRoutes(router, { db, fileOwned: () => false });
  more?.(router);
  return serveAdmin(router);
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

/** One HTTP call with a JSON body (when given); the answer's body parsed as JSON when it is JSON. */
export async function call(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await request(`${base}${path}`, {
    method: method as Dispatcher.HttpMethod,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.body.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {}
  return { status: res.statusCode, headers: res.headers, body: parsed };
}

/** The error code of an answer in either fault shape (OpenAI's or Apigee's). */
export function codeOf(a: Answer): string | undefined {
  return a.body?.error?.code ?? a.body?.fault?.detail?.errorcode;
}

export interface IssuedApp {
  email: string;
  app: string;
  appId: string;
  key: string;
  secret: string;
  keyId: string;
  /** The credential as the app-creation answer showed it (with its product grants). */
  credential: any;
}

let seq = 0;

/** A fresh developer with one app on `products`; the key is read from the creation answer (the only time it is shown). */
export async function createApp(adminUrl: string, products: string[], label = 'app'): Promise<IssuedApp> {
  const n = `${label}-${process.pid}-${++seq}-${Date.now().toString(36)}`;
  const email = `dev-${n}@example.com`;
  const dev = await call(adminUrl, 'POST', '/v1/developers', { email, firstName: 'Test', lastName: n, userName: n });
  if (dev.status !== 201) throw new Error(`creating developer ${email}: ${dev.status} ${JSON.stringify(dev.body)}`);
  const app = await call(adminUrl, 'POST', `/v1/developers/${encodeURIComponent(email)}/apps`, { name: n, apiProducts: products });
  if (app.status !== 201) throw new Error(`creating app ${n}: ${app.status} ${JSON.stringify(app.body)}`);
  const credential = app.body.credentials[0];
  return { email, app: n, appId: app.body.appId, key: credential.consumerKey, secret: credential.consumerSecret, keyId: credential.keyId, credential };
}

/** The admin path of an app (and below it). */
export function appPath(a: Pick<IssuedApp, 'email' | 'app'>, rest = ''): string {
  return `/v1/developers/${encodeURIComponent(a.email)}/apps/${encodeURIComponent(a.app)}${rest}`;
}

/** The answer, or undefined when it has not come within `ms` (a request that hangs). */
export function answerWithin(answer: Promise<Answer>, ms: number): Promise<Answer | undefined> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    answer.then(
      (a) => {
        clearTimeout(timer);
        resolve(a);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/** Calls `probe` until `done` says yes; throws with the last value after `timeoutMs`. */
export async function until<T>(probe: () => Promise<T>, done: (v: T) => boolean, timeoutMs: number, what: string, everyMs = 10): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (done(v)) return v;
    if (performance.now() > deadline) throw new Error(`${what}: not after ${timeoutMs} ms; last: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** GET /v1/tollgate/quota with `key`: authenticates like a request, spends no quota. */
export function quotaReport(gatewayUrl: string, key: string): Promise<Answer> {
  return call(gatewayUrl, 'GET', '/v1/tollgate/quota', undefined, { 'x-api-key': key });
}

/** What `key`'s LLMTokenQuota has counted in its current window, as GET /v1/tollgate/quota reports it. */
export async function tokenQuotaUsed(gatewayUrl: string, key: string): Promise<number> {
  const body = (await quotaReport(gatewayUrl, key)).body as { quotas: { kind: string; used: number }[] };
  return body.quotas.find((q) => q.kind === 'LLMTokenQuota')!.used;
}

/**
 * Waits until the gateway's in-memory snapshot knows `key` (the admin API answers once the write is committed; the
 * data plane learns of it from the change feed a moment later).
 */
export async function untilKeyKnown(gatewayUrl: string, key: string, timeoutMs = 5000): Promise<void> {
  await until(() => quotaReport(gatewayUrl, key), (a) => a.status === 200, timeoutMs, `key known to ${gatewayUrl}`);
}

/** When less than `marginMs` is left of the current calendar window of `periodMs` (UTC-aligned), waits for the next one. */
export async function awayFromWindowEdge(periodMs: number, marginMs: number): Promise<void> {
  const left = periodMs - (Date.now() % periodMs);
  if (left < marginMs) await new Promise((r) => setTimeout(r, left + 50));
}
