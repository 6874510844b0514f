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

/** `url` with any password replaced, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.href;
  } catch {
    return url;
  }
}
