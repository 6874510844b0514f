// The Store: typed repositories over one open database, plus transactions, change events and lifecycle.
import { sql, type Kysely } from 'kysely';
import { ApiProducts } from './api-products.js';
import { Apps } from './apps.js';
import { AuditLog } from './audit-log.js';
import type { ChangeListener, IdentityRefs } from './change-feed.js';
import { Credentials } from './credentials.js';
import type { DialectName } from './database-url.js';
import { Developers } from './developers.js';
import { StoreError } from './errors.js';
import { Kvm } from './kvm.js';
import { Manifests } from './manifests.js';
import { OperationSets } from './operation-sets.js';
import type { Tables } from './schema.js';
import type { Session } from './session.js';
import { loadIdentityRows, loadPolicyRows, loadSnapshot, type IdentityRows, type PolicyRows, type Snapshot } from './snapshot.js';

/** The repositories, bound to one actor (for audit rows) and possibly to an open transaction. */
export class StoreView {
  readonly products: ApiProducts;
  readonly operationSets: OperationSets;
  readonly manifests: Manifests;
  readonly developers: Developers;
  readonly apps: Apps;
  readonly credentials: Credentials;
  readonly kvm: Kvm;
  readonly audit: AuditLog;
  protected readonly session: Session;

  constructor(session: Session) {
    this.session = session;
    this.products = new ApiProducts(session);
    this.operationSets = new OperationSets(session);
    this.manifests = new Manifests(session);
    this.developers = new Developers(session);
    this.apps = new Apps(session);
    this.credentials = new Credentials(session);
    this.kvm = new Kvm(session);
    this.audit = new AuditLog(session);
  }

  /** The same store, recording `actor` in audit rows (e.g. `admin`, `config:products.yaml`). */
  withActor(actor: string): StoreView {
    return new StoreView(this.session.withActor(actor));
  }

  /**
   * Runs several changes all-or-none (e.g. an app and its first key, or a whole `apply`); listeners hear of them
   * once, after COMMIT. On PostgreSQL a failed statement aborts the transaction, so let store errors propagate. Once
   * `givenUp` is aborted (its caller stopped waiting), the transaction is rolled back rather than committed.
   * @example await store.transaction(async (tx) => { const app = await tx.apps.create(devId, { name }); await tx.credentials.issue({ appId: app.id }); });
   */
  transaction<T>(fn: (tx: StoreView) => Promise<T>, givenUp?: AbortSignal): Promise<T> {
    return this.session.transaction((session) => fn(new StoreView(session)), givenUp);
  }

  /** Inside a transaction: waits for, then holds until COMMIT, the lock on `topic` (see WriteContext.serialize). */
  serialize(topic: string): Promise<void> {
    // Outside one the lock would be let go at once, protecting nothing.
    if (!this.session.inTransaction) throw new StoreError('serialize() is for use inside store.transaction()');
    return this.session.write((w) => w.serialize(topic));
  }

  /** Everything the hot path needs, consistently (see Snapshot); `progress` is called after each page of rows. */
  loadSnapshot(progress?: () => void): Promise<Snapshot> {
    return loadSnapshot(this.session, progress);
  }

  /** The products, operation sets and manifests alone, consistently (see PolicyRows). */
  loadPolicyRows(): Promise<PolicyRows> {
    return loadPolicyRows(this.session);
  }

  /** The keys of the apps and developers a change named, with their apps and developers (see IdentityRows). */
  loadIdentityRows(refs: IdentityRefs): Promise<IdentityRows> {
    return loadIdentityRows(this.session, refs);
  }
}

export class Database extends StoreView {
  readonly dialect: DialectName;
  /** What tells this process of other processes' changes: PostgreSQL's LISTEN connection, or a SQLite file's poller. */
  readonly #listener: { close(): Promise<void> } | undefined;
  readonly #ownsSchema: boolean;
  readonly #kysely: Kysely<Tables>;
  #closed = false;

  /** `kysely`: the store's connections without its statement deadline (PostgreSQL; see openPostgresStore). */
  constructor(session: Session, opts: { listener?: { close(): Promise<void> }; ownsSchema: boolean; kysely?: Kysely<Tables> }) {
    super(session);
    this.dialect = session.core.dialect;
    this.#listener = opts.listener;
    this.#ownsSchema = opts.ownsSchema;
    this.#kysely = opts.kysely ?? session.core.db;
  }

  /**
   * The query builder, for modules that own further tables (their migrations go in migrations/). On PostgreSQL its
   * statements have no deadline of tollgate's, unlike the repositories': a module whose queries may run long sets its
   * own statement_timeout.
   */
  get kysely(): Kysely<Tables> {
    return this.#kysely;
  }

  /**
   * The query builder the repositories use: on PostgreSQL each statement is answered within STATEMENT_DEADLINE_MS or
   * its connection is ended, never pooled again (see openPostgresStore). For modules whose statements are all short and
   * must not wait on a connection gone silent until TCP keepalive notices (the PostgreSQL caches').
   */
  get boundedKysely(): Kysely<Tables> {
    return this.session.core.db;
  }

  /**
   * Called after every committed change: this process's at once, other replicas' through PostgreSQL NOTIFY (or, on a
   * SQLite file that several processes share, within SqliteChangePoller's POLL_MS).
   * Returns the unsubscribe function.
   */
  onChange(listener: ChangeListener): () => void {
    return this.session.core.feed.subscribe(listener);
  }

  /** `fn`'s reads as one consistent view of the store (a snapshot: no write made meanwhile shows in some and not others). */
  readConsistently<T>(fn: (db: Kysely<Tables>) => Promise<T>): Promise<T> {
    return this.session.snapshot((s) => fn(s.db));
  }

  /** Drops the PostgreSQL schema given to openDatabase, with everything in it (for tests). */
  async dropSchema(): Promise<void> {
    if (!this.#ownsSchema) throw new StoreError('dropSchema() needs a database opened with { schema } on PostgreSQL');
    await sql`drop schema if exists ${sql.id(this.session.core.schema)} cascade`.execute(this.kysely);
  }

  /** Closes the listener and every pooled connection. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#listener?.close();
    await this.#kysely.destroy();
  }
}
