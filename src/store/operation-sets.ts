// API operation sets: the REST and LLM operations (and quotas) that the products they reference grant.
import type { Selectable } from 'kysely';
import { decodeJson, decodeTimestamp, encodeJson, type JsonObject } from './codec.js';
import type { Applied, Owner } from './common-types.js';
import { contentHash } from './content-hash.js';
import { NotFoundError } from './errors.js';
import { paginate, type Page, type PageRequest } from './pagination.js';
import type { OperationSetsTable } from './schema.js';
import type { Session, WriteContext } from './session.js';

export interface OperationSetInput {
  name: string;
  /** apiProductRefs, quota, restOperations, llmOperations — as declared; config/ validates the shape. */
  spec: JsonObject;
  owner?: Owner;
}

export interface OperationSet {
  name: string;
  spec: JsonObject;
  owner: Owner;
  contentHash: string;
  createdAt: string;
  updatedAt: string;
}

const RESOURCE = 'operationset';

export class OperationSets {
  readonly #session: Session;

  constructor(session: Session) {
    this.#session = session;
  }

  async find(name: string): Promise<OperationSet | undefined> {
    const row = await this.#session.db.selectFrom('operation_sets').selectAll().where('name', '=', name).executeTakeFirst();
    return row && toOperationSet(row);
  }

  async get(name: string): Promise<OperationSet> {
    const set = await this.find(name);
    if (!set) throw new NotFoundError(RESOURCE, name);
    return set;
  }

  list(page: PageRequest = {}): Promise<Page<OperationSet>> {
    return paginate(this.#session.db.selectFrom('operation_sets').selectAll(), { columns: ['name'] }, page, toOperationSet);
  }

  async listAll(): Promise<OperationSet[]> {
    const rows = await this.#session.db.selectFrom('operation_sets').selectAll().orderBy('name').execute();
    return rows.map(toOperationSet);
  }

  /** Create or replace; identical content is `unchanged` and writes nothing. */
  apply(input: OperationSetInput): Promise<Applied<OperationSet>> {
    return this.#session.write(async (w) => {
      const owner = input.owner ?? 'api';
      const hash = contentHash({ spec: input.spec, owner });
      const current = await this.#locked(w, input.name);
      if (current?.contentHash === hash) return { outcome: 'unchanged', item: current };
      const values = { spec: encodeJson(input.spec), owner, content_hash: hash, updated_at: w.now };
      const row = await w.db
        .insertInto('operation_sets')
        .values({ name: input.name, ...values, created_at: w.now })
        .onConflict((oc) => oc.column('name').doUpdateSet(values))
        .returningAll()
        .executeTakeFirstOrThrow();
      const outcome = current ? 'updated' : 'created';
      await w.audit({ action: outcome === 'created' ? 'create' : 'update', resourceType: RESOURCE, resourceName: input.name, detail: { owner } });
      return { outcome, item: toOperationSet(row) };
    });
  }

  /** Returns what was deleted. @throws NotFoundError. */
  delete(name: string): Promise<OperationSet> {
    return this.#session.write(async (w) => {
      const deleted = await w.db.deleteFrom('operation_sets').where('name', '=', name).returningAll().executeTakeFirst();
      if (!deleted) throw new NotFoundError(RESOURCE, name);
      await w.audit({ action: 'delete', resourceType: RESOURCE, resourceName: name });
      return toOperationSet(deleted);
    });
  }

  async #locked(w: WriteContext, name: string): Promise<OperationSet | undefined> {
    const row = await w.forUpdate(w.db.selectFrom('operation_sets').selectAll().where('name', '=', name)).executeTakeFirst();
    return row && toOperationSet(row);
  }
}

function toOperationSet(row: Selectable<OperationSetsTable>): OperationSet {
  return {
    name: row.name,
    spec: decodeJson<JsonObject>(row.spec),
    owner: row.owner as Owner,
    contentHash: row.content_hash,
    createdAt: decodeTimestamp(row.created_at),
    updatedAt: decodeTimestamp(row.updated_at),
  };
}
