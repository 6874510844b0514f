// API products: what a developer's app may call, from config files (owner 'file') or the admin API (owner 'api').
import type { Selectable } from 'kysely';
import { decodeJson, decodeNullableNumber, decodeTimestamp, encodeJson, type JsonObject } from './codec.js';
import type { Applied, Attribute, Owner } from './common-types.js';
import { conflictOnUnique } from './constraint-errors.js';
import { contentHash } from './content-hash.js';
import { dropProductGrants } from './credentials.js';
import { NotFoundError } from './errors.js';
import { paginate, type Page, type PageRequest } from './pagination.js';
import { applyPatch, patchedFields } from './patch.js';
import type { ApiProductsTable } from './schema.js';
import type { Session, WriteContext } from './session.js';

export type ApprovalType = 'auto' | 'manual';

export interface QuotaSpec {
  limit: number;
  interval: number;
  timeUnit: string;
}

export interface ApiProductContent {
  name: string;
  displayName: string;
  description: string;
  approvalType: ApprovalType;
  attributes: Attribute[];
  /** Names of the operation sets that grant this product's operations. */
  operationSets: string[];
  quota: QuotaSpec | null;
  scopes: string[];
  owner: Owner;
  /** The rest of the product as declared (enforcementRefs, llmOperationGroup, ...), validated by config/. */
  spec: JsonObject;
}

export interface ApiProduct extends ApiProductContent {
  contentHash: string;
  createdAt: string;
  updatedAt: string;
}

/** Only `name` is required; the rest defaults to empty, `auto` approval and owner `api`. */
export type ApiProductInput = Pick<ApiProductContent, 'name'> & Partial<ApiProductContent>;
export type ApiProductPatch = Partial<Omit<ApiProductContent, 'name'>>;

const RESOURCE = 'apiproduct';

export class ApiProducts {
  readonly #session: Session;

  constructor(session: Session) {
    this.#session = session;
  }

  async find(name: string): Promise<ApiProduct | undefined> {
    const row = await this.#session.db.selectFrom('api_products').selectAll().where('name', '=', name).executeTakeFirst();
    return row && toApiProduct(row);
  }

  /**
   * The product a key is about to be granted (or a product-scoped key-value map entry written for). In a PostgreSQL
   * transaction its row stays share-locked until the end, so a concurrent delete either waits for the grant to commit
   * and then removes it (dropProductGrants; deleteDocument the entries), or has committed and the product is not
   * found: at READ COMMITTED, a plain read let both commit, leaving a grant to a product that no longer exists.
   */
  async findToGrant(name: string): Promise<ApiProduct | undefined> {
    const query = this.#session.db.selectFrom('api_products').selectAll().where('name', '=', name);
    const locking = this.#session.inTransaction && this.#session.core.dialect === 'postgres';
    const row = await (locking ? query.forShare() : query).executeTakeFirst();
    return row && toApiProduct(row);
  }

  async get(name: string): Promise<ApiProduct> {
    const product = await this.find(name);
    if (!product) throw new NotFoundError(RESOURCE, name);
    return product;
  }

  list(page: PageRequest = {}): Promise<Page<ApiProduct>> {
    return paginate(this.#session.db.selectFrom('api_products').selectAll(), { columns: ['name'] }, page, toApiProduct);
  }

  async listAll(): Promise<ApiProduct[]> {
    const rows = await this.#session.db.selectFrom('api_products').selectAll().orderBy('name').execute();
    return rows.map(toApiProduct);
  }

  /** @throws ConflictError when a product of that name exists. */
  create(input: ApiProductInput): Promise<ApiProduct> {
    return this.#session.write(async (w) => {
      const content = withDefaults(input);
      const row = await conflictOnUnique(
        RESOURCE,
        content.name,
        w.db
          .insertInto('api_products')
          .values({ ...toRow(content, w), created_at: w.now })
          .returningAll()
          .executeTakeFirstOrThrow(),
      );
      await w.audit({ action: 'create', resourceType: RESOURCE, resourceName: content.name, detail: { owner: content.owner } });
      await this.#dropStaleGrants(w, content);
      return toApiProduct(row);
    });
  }

  /** @throws NotFoundError. A patch that changes nothing writes nothing. */
  update(name: string, patch: ApiProductPatch): Promise<ApiProduct> {
    return this.#session.write(async (w) => {
      const current = await this.#locked(w, name);
      if (!current) throw new NotFoundError(RESOURCE, name);
      const content = applyPatch<ApiProductContent>(contentOf(current), patch);
      if (contentHash(content) === current.contentHash) return current;
      const row = await w.db
        .updateTable('api_products')
        .set(toRow(content, w))
        .where('name', '=', name)
        .returningAll()
        .executeTakeFirstOrThrow();
      await w.audit({ action: 'update', resourceType: RESOURCE, resourceName: name, detail: { fields: patchedFields(patch) } });
      return toApiProduct(row);
    });
  }

  /** Create or replace with exactly this content; identical content is `unchanged` and writes nothing. */
  apply(input: ApiProductInput): Promise<Applied<ApiProduct>> {
    return this.#session.write(async (w) => {
      const content = withDefaults(input);
      const current = await this.#locked(w, content.name);
      if (current?.contentHash === contentHash(content)) return { outcome: 'unchanged', item: current };
      const values = toRow(content, w);
      // ON CONFLICT covers two replicas applying the same new object at once: both succeed.
      const row = await w.db
        .insertInto('api_products')
        .values({ ...values, created_at: w.now })
        .onConflict((oc) => oc.column('name').doUpdateSet(values))
        .returningAll()
        .executeTakeFirstOrThrow();
      const outcome = current ? 'updated' : 'created';
      await w.audit({ action: outcome === 'created' ? 'create' : 'update', resourceType: RESOURCE, resourceName: content.name, detail: { owner: content.owner, apply: true } });
      if (!current) await this.#dropStaleGrants(w, content);
      return { outcome, item: toApiProduct(row) };
    });
  }

  /**
   * Returns what was deleted. Every key's grant of it goes too (dropProductGrants says why), unless `keepGrants`: the
   * --config files are the product's source, and one missing from them for a moment (a file being rewritten) must
   * not take its subscribers' access for good; put back, it serves them again. @throws NotFoundError.
   */
  delete(name: string, opts: { keepGrants?: boolean } = {}): Promise<ApiProduct> {
    return this.#session.write(async (w) => {
      const deleted = await w.db.deleteFrom('api_products').where('name', '=', name).returningAll().executeTakeFirst();
      if (!deleted) throw new NotFoundError(RESOURCE, name);
      const keys = opts.keepGrants ? 0 : await dropProductGrants(w, name, 'the product was deleted');
      await w.audit({ action: 'delete', resourceType: RESOURCE, resourceName: name, ...(keys > 0 && { detail: { grantsRemovedFromKeys: keys } }) });
      return toApiProduct(deleted);
    });
  }

  /**
   * A product the admin API creates is new: grants a file-declared product of that name left behind when it went
   * from the files (delete keepGrants) are not its subscribers. The files bringing their product back keep them.
   */
  async #dropStaleGrants(w: WriteContext, content: ApiProductContent): Promise<void> {
    if (content.owner !== 'file') await dropProductGrants(w, content.name, 'a new product was created under its name');
  }

  async #locked(w: WriteContext, name: string): Promise<ApiProduct | undefined> {
    const row = await w.forUpdate(w.db.selectFrom('api_products').selectAll().where('name', '=', name)).executeTakeFirst();
    return row && toApiProduct(row);
  }
}

function withDefaults(input: ApiProductInput): ApiProductContent {
  return {
    name: input.name,
    displayName: input.displayName ?? input.name,
    description: input.description ?? '',
    approvalType: input.approvalType ?? 'auto',
    attributes: input.attributes ?? [],
    operationSets: input.operationSets ?? [],
    quota: input.quota ?? null,
    scopes: input.scopes ?? [],
    owner: input.owner ?? 'api',
    spec: input.spec ?? {},
  };
}

function contentOf(p: ApiProduct): ApiProductContent {
  const { contentHash: _h, createdAt: _c, updatedAt: _u, ...content } = p;
  return content;
}

function toRow(c: ApiProductContent, w: WriteContext) {
  return {
    name: c.name,
    display_name: c.displayName,
    description: c.description,
    approval_type: c.approvalType,
    attributes: encodeJson(c.attributes),
    operation_sets: encodeJson(c.operationSets),
    quota_limit: c.quota?.limit ?? null,
    quota_interval: c.quota?.interval ?? null,
    quota_time_unit: c.quota?.timeUnit ?? null,
    scopes: encodeJson(c.scopes),
    owner: c.owner,
    spec: encodeJson(c.spec),
    content_hash: contentHash(c),
    updated_at: w.now,
  };
}

function toApiProduct(row: Selectable<ApiProductsTable>): ApiProduct {
  const limit = decodeNullableNumber(row.quota_limit);
  return {
    name: row.name,
    displayName: row.display_name,
    description: row.description,
    approvalType: row.approval_type as ApprovalType,
    attributes: decodeJson<Attribute[]>(row.attributes),
    operationSets: decodeJson<string[]>(row.operation_sets),
    quota:
      limit === null ? null : { limit, interval: row.quota_interval ?? 1, timeUnit: row.quota_time_unit ?? 'minute' },
    scopes: decodeJson<string[]>(row.scopes),
    owner: row.owner as Owner,
    spec: decodeJson<JsonObject>(row.spec),
    contentHash: row.content_hash,
    createdAt: decodeTimestamp(row.created_at),
    updatedAt: decodeTimestamp(row.updated_at),
  };
}
