// An upstream access token from an OAuth client-credentials grant (RFC 6749 §4.4), kept fresh: refreshed in the
// background before it expires, one fetch at a time however many requests need it, and a still-valid token kept
// when a refresh fails. A failure is logged when it starts (or its reason changes), and the recovery once: requests
// only see the fault code, the operator needs the why.
import { request } from 'undici';
import { HEADER_TEXT, HEADER_TEXT_PROBLEM } from '../../../config/apim-kinds.js';
import type { Logger } from '../../../lib/logger.js';
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
  logger: Logger;
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

/** `idpError`: the OAuth `error` code the endpoint answered (RFC 6749 §5.2), for the log only. */
export class TokenFetchError extends Error {
  constructor(
    message: string,
    readonly idpError?: string,
  ) {
    super(message);
  }
}

/** RFC 6749 §5.2's charset for `error`, bounded: anything else an endpoint sends is not logged. */
const OAUTH_ERROR_CODE = /^[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}$/;

/** `expires_in` in milliseconds: a number of seconds, or a numeric string as some IdPs send it (Azure AD v1: "3599"). */
function lifetimeMs(expiresIn: unknown): number {
  const seconds = typeof expiresIn === 'string' && /^\d+$/.test(expiresIn) ? Number(expiresIn) : expiresIn;
  return typeof seconds === 'number' && seconds > 0 ? seconds * 1000 : DEFAULT_LIFETIME_MS;
}

export class ClientCredentialsToken {
  readonly #o: TokenSourceOptions;
  #token: Token | null = null;
  #inflight: Promise<Token> | null = null;
  #failedUntil = 0;
  /** The failure last logged (its reason, and whether a token was held then); null while fetches succeed. */
  #failure: string | null = null;

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
        if (this.#failure !== null) this.#o.logger.info({ tokenUrl: this.#where() }, 'the token endpoint answers again');
        this.#failure = null;
        this.#token = token;
        this.#inflight = null;
        return token;
      },
      (err: unknown) => {
        this.#failed(err);
        this.#failedUntil = this.#o.now() + this.#o.retryAfterFailureMs;
        this.#inflight = null;
        throw err;
      },
    );
    return this.#inflight;
  }

  /**
   * Logs a failure once per outage (and again when its reason changes, or the token held expires meanwhile): a retry
   * every retryAfterFailure must not flood the log.
   */
  #failed(err: unknown): void {
    const reason = err instanceof TokenFetchError ? err.message : String(err);
    const idpError = err instanceof TokenFetchError ? err.idpError : undefined;
    const token = this.#token && this.#token.expiresAt > this.#o.now() ? this.#token : null;
    const failure = `${token ? 'held' : 'none'} ${reason} ${idpError ?? ''}`;
    if (failure === this.#failure) return;
    this.#failure = failure;
    const tokenUrl = this.#where();
    if (token) {
      const tokenExpiresAt = new Date(token.expiresAt).toISOString();
      this.#o.logger.warn({ tokenUrl, reason, idpError, tokenExpiresAt }, 'the upstream token cannot be refreshed; requests carry the one held until it expires');
    } else {
      this.#o.logger.warn({ tokenUrl, reason, idpError }, 'no upstream token can be fetched; requests fail (500 steps.tokeninjection.TokenFetchFailed) until one can');
    }
  }

  /** The token URL for the log, without credentials or a query that could carry them. */
  #where(): string {
    const url = new URL(this.#o.tokenUrl);
    return url.origin + url.pathname;
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
    let body: { access_token?: unknown; expires_in?: unknown; error?: unknown } = {};
    try {
      body = JSON.parse(text) ?? {};
    } catch {
      // Not JSON: an answer without an access_token, said below.
    }
    if (status !== 200 || typeof body.access_token !== 'string' || body.access_token === '') {
      const idpError = typeof body.error === 'string' && OAUTH_ERROR_CODE.test(body.error) ? body.error : undefined;
      throw new TokenFetchError(`the token endpoint answered ${status} without an access_token`, idpError);
    }
    // Refused as a failed fetch (not cached, retried after retryAfterFailure): sent, every request failed as the
    // client's bad request (400) until the token expired.
    if (!HEADER_TEXT.test(body.access_token)) throw new TokenFetchError(`the token endpoint answered an access_token unfit for a header: it must not hold ${HEADER_TEXT_PROBLEM}`);
    const lifetime = lifetimeMs(body.expires_in);
    // Counted from when the request left, so the token is never believed to live longer than it does.
    const expiresAt = started + lifetime;
    // At most half the lifetime ahead: a token living no longer than refreshBefore would otherwise be due for refresh
    // as soon as it arrived, and every request would fetch another.
    return { value: body.access_token, expiresAt, refreshAt: expiresAt - Math.min(o.refreshBeforeMs, lifetime / 2) };
  }
}
