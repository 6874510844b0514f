// Which apps a change of identity rows touched, as the store reads them again.
import type { Kysely } from 'kysely';
import type { IdentityRefs } from './change-feed.js';
import type { Tables } from './schema.js';

/** The ids of the apps `refs` names and of every app of the developers it names (a subquery: a developer may have many). */
export function ownedAppIds(db: Kysely<Tables>, refs: IdentityRefs) {
  return db
    .selectFrom('apps')
    .select('id')
    .where((eb) => eb.or([...(refs.appIds.length ? [eb('id', 'in', refs.appIds)] : []), ...(refs.developerIds.length ? [eb('developer_id', 'in', refs.developerIds)] : [])]));
}
