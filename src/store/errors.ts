// Typed errors of the storage layer, so callers (the admin API) can map them to 400/404/409 without parsing messages.

/** Base class: every error the store raises on purpose. */
export class StoreError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A resource with this identity already exists (unique constraint). */
export class ConflictError extends StoreError {
  constructor(
    readonly resourceType: string,
    readonly resourceName: string,
    options?: ErrorOptions,
  ) {
    super(`${resourceType} "${resourceName}" already exists`, options);
  }
}

/** The resource (or the parent it is created under) does not exist. */
export class NotFoundError extends StoreError {
  constructor(
    readonly resourceType: string,
    readonly resourceName: string,
  ) {
    super(`${resourceType} "${resourceName}" not found`);
  }
}

/** A page token that this store did not hand out (or that belongs to another listing). */
export class InvalidPageTokenError extends StoreError {
  constructor() {
    super('invalid page token');
  }
}

/** A database URL that is neither `sqlite:FILE` nor `postgres://...`, or a bad schema name. */
export class DatabaseConfigError extends StoreError {}

/** The database named by the URL could not be opened or migrated at start (unreachable, refused, no such file). */
export class DatabaseOpenError extends StoreError {}

/** PostgreSQL did not answer a statement in time, and the connection was given up (postgres-connection.ts). */
export class DatabaseTimeoutError extends StoreError {}

/**
 * Socket errors, PostgreSQL's connection-exception and shutdown SQLSTATEs (08xxx, 57P0x), its lock_timeout (55P03) and
 * idle_in_transaction_session_timeout (25P03) (postgres-connection.ts), SQLite's busy/locked.
 */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
  '08000', '08001', '08003', '08004', '08006', '57P01', '57P02', '57P03', '55P03', '25P03', 'SQLITE_BUSY', 'SQLITE_LOCKED',
]);
/** What node-postgres says, without a code, when a connection ends or cannot be made in time. */
const UNAVAILABLE_MESSAGE = /Connection terminated|timeout exceeded when trying to connect|Connection ended unexpectedly|connection error/i;

/**
 * Whether `err` (or an error it wraps) says the database cannot be reached or is not taking work right now, rather
 * than that the request or tollgate is wrong: such a request can be retried once the database is back.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof DatabaseTimeoutError) return true;
    const code = (e as { code?: unknown }).code;
    if ((typeof code === 'string' && UNAVAILABLE_CODES.has(code)) || UNAVAILABLE_MESSAGE.test(e.message)) return true;
  }
  return false;
}

/**
 * `url` with any password replaced, for messages. A value with no scheme is not shown (but for what follows its last
 * `@`, or a relative path): it may be a password put where a URL belongs, or a key=value connection string.
 */
export function redactUrl(url: string): string {
  if (!/^[a-z][a-z0-9+.-]*:/i.test(url)) {
    // A relative path (`--db ./tollgate.db`, its `sqlite:` forgotten) is shown: no password begins with `./` (base64
    // never holds a dot).
    if (/^\.\.?\//.test(url) && !url.includes('@')) return url;
    const at = url.lastIndexOf('@');
    return at < 0 ? '***' : `***${url.slice(at)}`;
  }
  let redacted: string | undefined;
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    // An `@` that WHATWG did not read as ending the credentials (`redis:/:pw@h`, a scheme without its `//`) is
    // handled below, as for text that is no URL.
    if (u.username || u.password || !url.includes('@')) redacted = u.href;
  } catch {
    // Handled below.
  }
  // No WHATWG URL (`redis+cluster://u:pw@a:1,b:2`, a password holding an unencoded `/`, a scheme missing its
  // slashes): everything after the scheme up to the last `@` goes, which may take more than the credentials (an `@`
  // in a later parameter) but never leaves a piece.
  redacted ??= url.replace(/^([a-z][a-z0-9+.-]*:\/*).*@/i, '$1***@');
  // And a password given as a parameter (`?sentinelPassword=`, `password=` in a connection string).
  return redacted.replace(/((?:^|[?&;\s])[^=&#;\s]*password=)[^&#;\s]*/gi, '$1***');
}
