// Key-value maps (Apigee KVMs) for policies, scoped to the environment or to one API product.
import type { Insertable, Kysely, Selectable } from 'kysely';
import { decodeJson, decodeTimestamp } from './codec.js';
import { conflictOnUnique } from './constraint-errors.js';
import { NotFoundError } from './errors.js';
import { paginate, readInPages, type Page, type PageRequest } from './pagination.js';
import type { KvmEntriesTable, Tables } from './schema.js';
import type { Session, WriteContext } from './session.js';
import type { KvmEntryRef } from './change-feed.js';

export type KvmScope = 'environment' | `apiproduct:${string}`;

/** The longest entry key: within PostgreSQL's index row limit. */
export const MAX_KVM_KEY_LENGTH = 512;

/**
 * The largest value (UTF-8 bytes) a policy's put stores: its values come from requests, and every replica holds every
 * entry in memory, so a header or a callout's answer (up to 1 MiB) went in whole, once per distinct key.
 */
export const MAX_KVM_VALUE_BYTES = 10 * 1024;

/**
 * Why the admin API could never address an entry of this key, or undefined when it can: it names entries in its
 * paths, which resolve `.` and `..` away (a DELETE of entry `..` was a DELETE of its map) and refuse a backslash.
 */
export function kvmKeyProblem(key: string): string | undefined {
  if (key === '' || key === '.' || key === '..') return `is ${JSON.stringify(key)}, which no path segment names (. and .. are resolved away)`;
  if (key.includes('\\')) return 'holds a backslash (the admin API refuses one in a path)';
  if (key.length > MAX_KVM_KEY_LENGTH) return `is longer than ${MAX_KVM_KEY_LENGTH} characters`;
}

export interface KvmEntry {
  scope: KvmScope;
  mapName: string;
  key: string;
  /** Stored as given: when `encrypted`, the caller has already encrypted it and decrypts on read. */
  value: string;
  encrypted: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface KvmPutInput {
  scope: KvmScope;
  mapName: string;
  key: string;
  value: string;
  encrypted?: boolean;
}

const RESOURCE = 'kvm';
/** The manifest kind declaring a map (stored in `manifests` when the admin API made it). */
const MAP_KIND = 'KeyValueMap';

/** Whether a stored KeyValueMap's spec makes it encrypted: only `encrypted: true` does (the schema's default is false). */
export const storedMapEncrypted = (spec: { encrypted?: unknown }): boolean => spec.encrypted === true;

export class Kvm {
  readonly #session: Session;

  constructor(session: Session) {
    this.#session = session;
  }

  async get(scope: KvmScope, mapName: string, key: string): Promise<KvmEntry | undefined> {
    const row = await entryRow(this.#session.db, { scope, mapName, key });
    return row && toEntry(row);
  }

  /** One map's entries by key. */
  list(scope: KvmScope, mapName: string, page: PageRequest = {}): Promise<Page<KvmEntry>> {
    const query = this.#session.db.selectFrom('kvm_entries').selectAll().where('scope', '=', scope).where('map_name', '=', mapName);
    return paginate(query, { columns: ['key'] }, page, toEntry);
  }

  /** Every entry, in pages of one consistent view (see readInPages); `progress` is called after each page. */
  listAll(progress?: () => void): Promise<KvmEntry[]> {
    return this.#session.snapshot((s) => readInPages(s.db.selectFrom('kvm_entries').selectAll(), ['scope', 'map_name', 'key'], toEntry, { dialect: s.core.dialect, progress }));
  }

  /** Creates or replaces the entry. The audit row names the entry but never holds its value. */
  put(input: KvmPutInput): Promise<KvmEntry> {
    return this.#session.write(async (w) => {
      const row = await upsert(w, input);
      await w.audit({ action: 'put', resourceType: RESOURCE, resourceName: entryName(input), detail: { encrypted: Boolean(input.encrypted) } });
      return toEntry(row);
    });
  }

  /**
   * A policy's `put` (override), decided by the entry the store holds now rather than by a replica's memory, which
   * another replica's write reaches only later (a put that memory took for "unchanged" was lost): nothing is written
   * when `unchanged(stored)` says the stored entry holds the value already (the default compares what is stored; an
   * encrypted value is stored under a fresh IV each time, so only its reader can tell). The data plane runs it per
   * request: it is the flow's data, not a configuration change, so no audit row; and a write is announced as this
   * entry alone, so replicas read it again instead of everything.
   * @returns whether it wrote.
   */
  putFromPolicy(input: KvmPutInput, unchanged: (stored: KvmEntry) => boolean = (stored) => stored.value === input.value && stored.encrypted === Boolean(input.encrypted)): Promise<boolean> {
    return this.#session.write(async (w) => {
      const stored = await entryRow(w.db, input);
      if (stored && unchanged(toEntry(stored))) return false;
      await upsert(w, input);
      w.kvmEntryWritten({ scope: input.scope, mapName: input.mapName, key: input.key });
      return true;
    });
  }

  /**
   * A policy's `put` with `override: false`: the entry only when there is none. The primary key decides, not a prior
   * read (nor a replica's memory, which may not have heard of another replica's entry yet). Announced as putFromPolicy.
   * @returns whether it wrote.
   */
  addFromPolicy(input: KvmPutInput): Promise<boolean> {
    return this.#session.write(async (w) => {
      const row = await w.db
        .insertInto('kvm_entries')
        .values(newRow(w, input))
        .onConflict((oc) => oc.columns(['scope', 'map_name', 'key']).doNothing())
        .returning('key')
        .executeTakeFirst();
      if (!row) return false;
      w.kvmEntryWritten({ scope: input.scope, mapName: input.mapName, key: input.key });
      return true;
    });
  }

  /** Up to `limit` encrypted values of the map, in any scope: what tells the key they were written under. */
  async encryptedSample(mapName: string, limit: number): Promise<string[]> {
    const rows = await this.#session.db.selectFrom('kvm_entries').select('value').where('map_name', '=', mapName).where('encrypted', '=', 1).limit(limit).execute();
    return rows.map((r) => r.value);
  }

  /** Every encrypted entry, read in pages in one snapshot, as listAll reads them all. */
  listEncrypted(): Promise<KvmEntry[]> {
    return this.#session.snapshot((s) => readInPages(s.db.selectFrom('kvm_entries').selectAll().where('encrypted', '=', 1), ['scope', 'map_name', 'key'], toEntry, { dialect: s.core.dialect }));
  }

  /**
   * Stores each entry's value encrypted anew (a key change), where it still holds the value it was read with (a write
   * meanwhile wins); returns how many were replaced. Each is announced, as a policy's put is: a replica that could not
   * read it under the earlier key reads it again. One audit row, naming how many, never a value.
   */
  replaceCiphertexts(changes: readonly { entry: KvmEntryRef; was: string; now: string }[]): Promise<number> {
    return this.#session.write(async (w) => {
      let replaced = 0;
      for (const { entry, was, now } of changes) {
        const done = await w.db
          .updateTable('kvm_entries')
          .set({ value: now })
          .where('scope', '=', entry.scope)
          .where('map_name', '=', entry.mapName)
          .where('key', '=', entry.key)
          .where('value', '=', was)
          .executeTakeFirst();
        if (Number(done.numUpdatedRows) === 0) continue;
        replaced++;
        w.kvmEntryWritten(entry);
      }
      if (replaced > 0) await w.audit({ action: 'reencrypt', resourceType: RESOURCE, resourceName: '*', detail: { entries: replaced } });
      return replaced;
    });
  }

  /**
   * The map of this name the admin API declared (and whether it encrypts), for a policy's put in the same transaction:
   * held there (PostgreSQL FOR SHARE; SQLite serialises writers), so a delete of the map either waits for the put and
   * then takes its entry along, or comes first and the put finds no map. Without it a put committed alongside the
   * delete left an entry no map holds, which the admin API can neither list nor delete.
   */
  storedMap(name: string): Promise<{ encrypted: boolean } | undefined> {
    return this.#session.write(async (w) => {
      const row = await w.forShare(w.db.selectFrom('manifests').select('spec').where('kind', '=', MAP_KIND).where('name', '=', name)).executeTakeFirst();
      return row && { encrypted: storedMapEncrypted(decodeJson<{ encrypted?: unknown }>(row.spec)) };
    });
  }

  /** The maps that have entries in this scope. */
  async mapNames(scope: KvmScope): Promise<string[]> {
    const rows = await this.#session.db.selectFrom('kvm_entries').select('map_name').distinct().where('scope', '=', scope).orderBy('map_name').execute();
    return rows.map((r) => r.map_name);
  }

  /**
   * Creates the entry. The primary key, not a prior read, refuses an existing one, so of two concurrent creates one
   * fails instead of both succeeding with the second value silently replacing the first.
   * @throws ConflictError when the entry exists.
   */
  create(input: KvmPutInput): Promise<KvmEntry> {
    return this.#session.write(async (w) => {
      const row = await conflictOnUnique(
        RESOURCE,
        entryName(input),
        w.db
          .insertInto('kvm_entries')
          .values(newRow(w, input))
          .returningAll()
          .executeTakeFirstOrThrow(),
      );
      await w.audit({ action: 'put', resourceType: RESOURCE, resourceName: entryName(input), detail: { encrypted: Boolean(input.encrypted) } });
      return toEntry(row);
    });
  }

  /** Returns what was deleted. @throws NotFoundError. */
  delete(scope: KvmScope, mapName: string, key: string): Promise<KvmEntry> {
    return this.#session.write(async (w) => {
      const deleted = await w.db
        .deleteFrom('kvm_entries')
        .where('scope', '=', scope)
        .where('map_name', '=', mapName)
        .where('key', '=', key)
        .returningAll()
        .executeTakeFirst();
      if (!deleted) throw new NotFoundError(RESOURCE, entryName({ scope, mapName, key }));
      await w.audit({ action: 'delete', resourceType: RESOURCE, resourceName: entryName({ scope, mapName, key }) });
      return toEntry(deleted);
    });
  }

  /** Removes a whole map; returns how many entries it had (0 writes nothing). */
  deleteMap(scope: KvmScope, mapName: string): Promise<number> {
    return this.#session.write(async (w) => {
      const deleted = await w.db
        .deleteFrom('kvm_entries')
        .where('scope', '=', scope)
        .where('map_name', '=', mapName)
        .returning('key')
        .execute();
      if (deleted.length > 0) {
        await w.audit({ action: 'delete', resourceType: RESOURCE, resourceName: `${scope}/${mapName}`, detail: { entries: deleted.length } });
      }
      return deleted.length;
    });
  }
}

function entryRow(db: Kysely<Tables>, e: { scope: string; mapName: string; key: string }): Promise<Selectable<KvmEntriesTable> | undefined> {
  return db.selectFrom('kvm_entries').selectAll().where('scope', '=', e.scope).where('map_name', '=', e.mapName).where('key', '=', e.key).executeTakeFirst();
}

function newRow(w: WriteContext, input: KvmPutInput): Insertable<KvmEntriesTable> {
  return { scope: input.scope, map_name: input.mapName, key: input.key, value: input.value, encrypted: input.encrypted ? 1 : 0, created_at: w.now, updated_at: w.now };
}

function upsert(w: WriteContext, input: KvmPutInput): Promise<Selectable<KvmEntriesTable>> {
  const row = newRow(w, input);
  return w.db
    .insertInto('kvm_entries')
    .values(row)
    .onConflict((oc) => oc.columns(['scope', 'map_name', 'key']).doUpdateSet({ value: row.value, encrypted: row.encrypted, updated_at: row.updated_at }))
    .returningAll()
    .executeTakeFirstOrThrow();
}

function entryName(e: { scope: string; mapName: string; key: string }): string {
  return `${e.scope}/${e.mapName}/${e.key}`;
}

function toEntry(row: Selectable<KvmEntriesTable>): KvmEntry {
  return {
    scope: row.scope as KvmScope,
    mapName: row.map_name,
    key: row.key,
    value: row.value,
    encrypted: row.encrypted === 1,
    createdAt: decodeTimestamp(row.created_at),
    updatedAt: decodeTimestamp(row.updated_at),
  };
}
