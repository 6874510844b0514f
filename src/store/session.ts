// Who is writing and in which transaction: every mutation runs in one, writes its audit row there, and is announced after commit.
import { sql, type Kysely, type SelectQueryBuilder } from 'kysely';
import type { DialectName } from './database-url.js';
import { IDENTITY_TYPES, RESOURCE_TYPES, type ChangeEvent, type ChangeFeed, type IdentityRefs, type KvmEntryRef, type ResourceType } from './change-feed.js';
import { insertAuditRow } from './audit-log.js';
import { notifyChange } from './pg-change-listener.js';
import { logChange } from './sqlite-change-poller.js';
import { loadIdentityRows, type IdentityRows } from './snapshot.js';
import { inTransaction } from './transaction.js';
import type { Tables } from './schema.js';

/** What every view of one open database shares. */
export interface StoreCore {
  db: Kysely<Tables>;
  dialect: DialectName;
  feed: ChangeFeed;
  /** Names this process in NOTIFY payloads. */
  instanceId: string;
  /** PostgreSQL schema (or 'public'); 'main' for SQLite. */
  schema: string;
  /** A SQLite file, which other processes may share: changes are written to change_log for them (sqlite-change-poller.ts). */
  logChanges?: boolean;
}

export interface AuditInput {
  action: string;
  resourceType: ResourceType;
  resourceName: string;
  /** Never secrets, key hashes or KVM values. */
  detail?: Record<string, unknown>;
  /** For a developer, app or key: whose keys the change touches (not written to the audit row). */
  owner?: IdentityOwner;
}

/**
 * Whose keys a change of identity rows touches: one key (of that app), every key of an app, or of every app of a
 * developer.
 */
export type IdentityOwner = { appId: string; keyId: string } | { appId: string } | { developerId: string };

/** Past this many owners, listeners are better served reading everything again than so many apps one by one. */
const MAX_NAMED_OWNERS = 256;

/**
 * Past this many keys, their apps are named instead: the ids must fit a NOTIFY payload beside the owners, and a change
 * of that many keys (a re-grant of a whole app) is read about as cheaply by app.
 */
const MAX_NAMED_KEYS = 64;

/** The owners of a transaction's identity changes; `unnamed` once one change did not say whose keys it touched. */
interface IdentityChanges {
  appIds: Set<string>;
  developerIds: Set<string>;
  /** Keys changed one by one, with their apps. */
  keys: Map<string, string>;
  unnamed: boolean;
}

interface OpenTransaction {
  db: Kysely<Tables>;
  changed: Set<ResourceType>;
  /** Key-value map entries written without an audit row (kvmEntryWritten). */
  kvmEntries: KvmEntryRef[];
  identity: IdentityChanges;
}

/** Handed to a mutation: the transaction's connection, one timestamp for the whole change, and the audit writer. */
export class WriteContext {
  readonly now = new Date().toISOString();
  readonly #tx: OpenTransaction;
  readonly #dialect: DialectName;
  readonly #actor: string;

  constructor(tx: OpenTransaction, dialect: DialectName, actor: string) {
    this.#tx = tx;
    this.#dialect = dialect;
    this.#actor = actor;
  }

  get db(): Kysely<Tables> {
    return this.#tx.db;
  }

  /** Writes the audit row and marks the resource type as changed for the post-commit notification. */
  async audit({ owner, ...entry }: AuditInput): Promise<void> {
    await insertAuditRow(this.#tx.db, { ...entry, at: this.now, actor: this.#actor });
    this.touched(entry.resourceType, owner);
  }

  /**
   * For a key-value map entry a policy's `put` wrote: announced as that entry alone, so listeners need not read
   * every entry (or anything else) again for it.
   */
  kvmEntryWritten(entry: KvmEntryRef): void {
    this.#tx.kvmEntries.push(entry);
  }

  /** For rows a mutation removes or alters as a side effect (ON DELETE CASCADE); `owner` as in AuditInput. */
  touched(resourceType: ResourceType, owner?: IdentityOwner): void {
    this.#tx.changed.add(resourceType);
    if (!IDENTITY_TYPES.has(resourceType)) return;
    const identity = this.#tx.identity;
    if (!owner) identity.unnamed = true;
    else if ('keyId' in owner) identity.keys.set(owner.keyId, owner.appId);
    else if ('appId' in owner) identity.appIds.add(owner.appId);
    else identity.developerIds.add(owner.developerId);
  }

  /**
   * Holds the lock named `topic` (in this schema) until the transaction ends, so transactions that each check an
   * invariant over many rows (the policies still build) see each other's writes instead of both committing. A
   * PostgreSQL advisory lock; SQLite's BEGIN IMMEDIATE already serialises writers.
   */
  async serialize(topic: string): Promise<void> {
    if (this.#dialect !== 'postgres') return;
    await sql`select pg_advisory_xact_lock(hashtext(${`tollgate:${topic}`}), hashtext(coalesce(current_schema(), 'public')))`.execute(this.#tx.db);
  }

  /** Row lock for read-modify-write on PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers. */
  forUpdate<DB, TB extends keyof DB, O>(query: SelectQueryBuilder<DB, TB, O>): SelectQueryBuilder<DB, TB, O> {
    return this.#dialect === 'postgres' ? query.forUpdate() : query;
  }

  /** Shared row lock (writers of the row wait, other sharers do not) on PostgreSQL; SQLite serialises writers. */
  forShare<DB, TB extends keyof DB, O>(query: SelectQueryBuilder<DB, TB, O>): SelectQueryBuilder<DB, TB, O> {
    return this.#dialect === 'postgres' ? query.forShare() : query;
  }
}

export class Session {
  readonly core: StoreCore;
  readonly actor: string;
  readonly #tx: OpenTransaction | undefined;

  constructor(core: StoreCore, actor: string, tx?: OpenTransaction) {
    this.core = core;
    this.actor = actor;
    this.#tx = tx;
  }

  /** The connection reads go to: the open transaction's, or the pool. */
  get db(): Kysely<Tables> {
    return this.#tx?.db ?? this.core.db;
  }

  withActor(actor: string): Session {
    return new Session(this.core, actor, this.#tx);
  }

  get inTransaction(): boolean {
    return this.#tx !== undefined;
  }

  /** Runs one mutation: inside the open transaction if there is one, otherwise in its own. */
  write<T>(fn: (w: WriteContext) => Promise<T>): Promise<T> {
    if (this.#tx) return fn(new WriteContext(this.#tx, this.core.dialect, this.actor));
    return this.transaction((session) => session.write(fn));
  }

  /**
   * Joins an open transaction (nested calls are flattened) or opens one; listeners hear of it after COMMIT. One it
   * opens is rolled back, not committed, once `givenUp` is aborted.
   */
  async transaction<T>(fn: (session: Session) => Promise<T>, givenUp?: AbortSignal): Promise<T> {
    if (this.#tx) return fn(this);
    const { db, dialect, feed, instanceId, schema } = this.core;
    const tx: Omit<OpenTransaction, 'db'> = openTransaction();
    let event: Omit<ChangeEvent, 'origin'> | undefined;
    let identityRows: IdentityRows | undefined;
    /** Set as the callback returns: what inTransaction does after it is the COMMIT. */
    let committing = false;
    let result: T;
    try {
      result = await inTransaction(db, dialect, 'write', async (conn) => {
        const session = new Session(this.core, this.actor, { db: conn, ...tx });
        const value = await fn(session);
        event = changeOf(tx);
        // Told to the other processes on the database: by NOTIFY on PostgreSQL, by the change log on a SQLite file.
        if (event && dialect === 'postgres') await notifyChange(conn, { schema, origin: instanceId, ...event }, tx.identity.keys);
        if (event && this.core.logChanges) await logChange(conn, { schema, origin: instanceId, ...event }, tx.identity.keys);
        // Read on this connection, which has just answered: a read after COMMIT could find the database gone, and this
        // replica would keep serving what the change replaced (a revoked key) while its answer said it was done.
        if (event?.identity) identityRows = await loadIdentityRows(session, event.identity);
        givenUp?.throwIfAborted();
        committing = true;
        return value;
      }, { signal: givenUp });
    } catch (err) {
      // A COMMIT whose answer never came (the connection dropped after sending it) may have committed: other replicas
      // then hear of it, but this one skips its own NOTIFY, and nothing else would tell it. Its listeners read
      // everything again (retried until the database answers) rather than keep serving what the change replaced.
      if (committing && event) feed.publish({ resourceTypes: [...RESOURCE_TYPES], origin: 'local' });
      throw err;
    }
    if (event) feed.publish({ ...event, ...(identityRows && { identityRows }), origin: 'local' });
    return result;
  }

  /** A consistent read of several tables (one snapshot, not a mix of before and after a concurrent write). */
  snapshot<T>(fn: (session: Session) => Promise<T>): Promise<T> {
    if (this.#tx) return fn(this);
    return inTransaction(this.core.db, this.core.dialect, 'snapshot', (conn) =>
      fn(new Session(this.core, this.actor, { db: conn, ...openTransaction() })),
    );
  }
}

function openTransaction(): Omit<OpenTransaction, 'db'> {
  return { changed: new Set(), kvmEntries: [], identity: { appIds: new Set(), developerIds: new Set(), keys: new Map(), unnamed: false } };
}

/** The owners of the transaction's changes when they were all changes of identity rows, each naming its owner. */
function identityOf(tx: Omit<OpenTransaction, 'db'>): IdentityRefs | undefined {
  const { developerIds, keys, unnamed } = tx.identity;
  const appIds = new Set(tx.identity.appIds);
  if (keys.size > MAX_NAMED_KEYS) for (const appId of keys.values()) appIds.add(appId);
  // A key of an app read whole is read with it.
  const keyIds = keys.size > MAX_NAMED_KEYS ? [] : [...keys].filter(([, appId]) => !appIds.has(appId)).map(([keyId]) => keyId);
  const owners = appIds.size + developerIds.size + keyIds.length;
  if (unnamed || owners === 0 || appIds.size + developerIds.size > MAX_NAMED_OWNERS) return undefined;
  for (const t of tx.changed) if (!IDENTITY_TYPES.has(t)) return undefined;
  return { appIds: [...appIds], developerIds: [...developerIds], ...(keyIds.length > 0 && { keyIds }) };
}

/** What a transaction tells listeners; undefined when it changed nothing. */
function changeOf(tx: Omit<OpenTransaction, 'db'>): Omit<ChangeEvent, 'origin'> | undefined {
  if (tx.kvmEntries.length === 0) {
    if (tx.changed.size === 0) return undefined;
    const identity = identityOf(tx);
    return { resourceTypes: [...tx.changed], ...(identity && { identity }) };
  }
  // Entries are named only when they are all of the transaction's kvm changes (an audited one may be a whole map).
  if (tx.changed.has('kvm')) return { resourceTypes: [...tx.changed] };
  return { resourceTypes: [...tx.changed, 'kvm'], kvmEntries: tx.kvmEntries };
}
