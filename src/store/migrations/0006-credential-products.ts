// Migration 6: credential_products, the (product, key) pairs of every key's grants, so that creating or deleting a
// product finds the keys holding it by an index (dropProductGrants) instead of decoding every key's grants.
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { DialectName } from '../database-url.js';
import type { Migration } from './migration.js';

async function up(db: Kysely<any>, dialect: DialectName): Promise<void> {
  await db.schema
    .createTable('credential_products')
    .addColumn('apiproduct', 'text', (c) => c.notNull())
    .addColumn('key_id', 'text', (c) => c.notNull().references('credentials.key_id').onDelete('cascade'))
    .addPrimaryKeyConstraint('credential_products_pk', ['apiproduct', 'key_id'])
    .execute();
  // For the cascade from a deleted key and the triggers' deletes.
  await db.schema.createIndex('credential_products_key_idx').on('credential_products').column('key_id').execute();

  // Triggers rather than the store's code keep the pairs: every writer of credentials.api_products then keeps them
  // right, a replica of the previous release during a rolling upgrade included.
  if (dialect === 'postgres') {
    // search_path as when created: the function finds the table beside credentials whoever writes.
    await sql`create function credential_products_sync() returns trigger language plpgsql set search_path from current as $$
      begin
        if tg_op = 'UPDATE' then delete from credential_products where key_id = old.key_id; end if;
        insert into credential_products (apiproduct, key_id) ${pairs(dialect, 'new')};
        return null;
      end $$`.execute(db);
    await sql`create trigger credential_products_sync after insert or update of api_products on credentials
      for each row execute function credential_products_sync()`.execute(db);
  } else {
    await sql`create trigger credential_products_insert after insert on credentials begin
      insert into credential_products (apiproduct, key_id) ${pairs(dialect, 'new')};
    end`.execute(db);
    await sql`create trigger credential_products_update after update of api_products on credentials begin
      delete from credential_products where key_id = old.key_id;
      insert into credential_products (apiproduct, key_id) ${pairs(dialect, 'new')};
    end`.execute(db);
  }
  await sql`insert into credential_products (apiproduct, key_id) ${pairs(dialect, 'c', 'credentials c, ')}`.execute(db);
}

/**
 * `(apiproduct, key_id)` for each product the grants of credentials row `row` name, once; `from` puts the rows
 * before it. Raw SQL: trigger and function bodies take no parameters.
 */
function pairs(dialect: DialectName, row: string, from = ''): RawBuilder<unknown> {
  const elements = dialect === 'postgres' ? 'jsonb_array_elements' : 'json_each';
  return sql.raw(
    `select distinct e.value ->> 'apiproduct', ${row}.key_id from ${from}${elements}(${row}.api_products) e where e.value ->> 'apiproduct' is not null`,
  );
}

export const credentialProducts: Migration = { id: 6, name: 'credential-products', up };
