// An upstream access token from an OAuth client-credentials grant (RFC 6749 §4.4), kept fresh: refreshed in the
// background before it expires, one fetch at a time however many requests need it, and a still-valid token kept
// when a refresh fails.
import { request } from 'undici';
import { readCapped } from '../../../lib/read-capped.js';

export interface TokenSourceOptions {
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  scope?: string;
  audience?: string;
  authMethod: 'basic' | 'body';
  /** How long before expiry a token is refreshed; at most half its lifetime. */
  refreshBeforeMs: number;
  timeoutMs: number;
  retryAfterFailureMs: number;
  now: () => number;
}

interface Token {
  value: string;
  /** Epoch milliseconds. */
  expiresAt: number;
  /** Epoch milliseconds: from then on, requests start a background refresh. */
  refreshAt: number;
}

/** Used when the token endpoint gives no expires_in. */
const DEFAULT_LIFETIME_MS = 300_000;

/**
 * A token response is a token and a few fields, a few KiB; one past this could not go upstream in a header anyway.
 * Reading stops here so a broken or hostile endpoint cannot make the gateway hold an endless body.
 */
const MAX_TOKEN_RESPONSE_BYTES = 64 * 1024;

export class TokenFetchError extends Error {}

export class ClientCredentialsToken {
  readonly #o: TokenSourceOptions;
  #token: Token | null = null;
  #inflight: Promise<Token> | null = null;
  #failedUntil = 0;

  constructor(o: TokenSourceOptions) {
    this.#o = o;
  }

  /** The token to send now; a promise only when there is no usable token and one must be fetched. */
  get(): string | Promise<string> {
    const now = this.#o.now();
    const token = this.#token;
    if (token && token.expiresAt > now) {
      if (now >= token.refreshAt && now >= this.#failedUntil) this.#refresh().catch(() => {});
      return token.value;
    }
    if (now < this.#failedUntil && !this.#inflight) return Promise.reject(new TokenFetchError('the token endpoint failed a moment ago'));
    return this.#refresh().then((t) => t.value);
  }

  #refresh(): Promise<Token> {
    this.#inflight ??= this.#fetch().then(
      (token) => {
        this.#token = token;
        this.#inflight = null;
        return token;
      },
      (err: unknown) => {
        this.#failedUntil = this.#o.now() + this.#o.retryAfterFailureMs;
        this.#inflight = null;
        throw err;
      },
    );
    return this.#inflight;
  }

  async #fetch(): Promise<Token> {
    const o = this.#o;
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (o.scope) form.set('scope', o.scope);
    if (o.audience) form.set('audience', o.audience);
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    if (o.authMethod === 'basic') {
      const pair = `${encodeURIComponent(o.clientId)}:${encodeURIComponent(o.clientSecret)}`;
      headers.authorization = `Basic ${Buffer.from(pair).toString('base64')}`;
    } else {
      form.set('client_id', o.clientId);
      form.set('client_secret', o.clientSecret);
    }
    const started = o.now();
    let status: number;
    let text: string;
    try {
      const res = await request(o.tokenUrl, { method: 'POST', headers, body: form.toString(), signal: AbortSignal.timeout(o.timeoutMs) });
      status = res.statusCode;
      const tooLarge = () => new TokenFetchError(`the token endpoint answered more than ${MAX_TOKEN_RESPONSE_BYTES} bytes`);
      text = (await readCapped(res.body, MAX_TOKEN_RESPONSE_BYTES, tooLarge)).toString('utf8');
    } catch (err) {
      if (err instanceof TokenFetchError) throw err;
      // The message names the failure, never the request (which holds the secret).
      throw new TokenFetchError(`the token endpoint could not be reached (${(err as Error).name})`);
    }
    let body: { access_token?: unknown; expires_in?: unknown } = {};
    try {
      body = JSON.parse(text) ?? {};
    } catch {
      // Not JSON: an answer without an access_token, said below.
    }
    if (status !== 200 || typeof body.access_token !== 'string' || body.access_token === '') {
      throw new TokenFetchError(`the token endpoint answered ${status} without an access_token`);
    }
    const lifetime = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in * 1000 : DEFAULT_LIFETIME_MS;
    // Counted from when the request left, so the token is never believed to live longer than it does.
    const expiresAt = started + lifetime;
    // At most half the lifetime ahead: a token living no longer than refreshBefore would otherwise be due for refresh
    // as soon as it arrived, and every request would fetch another.
    return { value: body.access_token, expiresAt, refreshAt: expiresAt - Math.min(o.refreshBeforeMs, lifetime / 2) };
  }
}
