// Turns unique-constraint violations from either driver into ConflictError.
import { ConflictError } from './errors.js';

/** PostgreSQL SQLSTATE 23505; better-sqlite3's extended result codes for UNIQUE and PRIMARY KEY. */
const UNIQUE_VIOLATION_CODES = new Set(['23505', 'SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_CONSTRAINT_PRIMARYKEY']);

function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && UNIQUE_VIOLATION_CODES.has(String((err as { code?: unknown }).code));
}

/**
 * Awaits a write; a unique violation becomes ConflictError(resourceType, resourceName).
 * The constraint, not a prior SELECT, decides, so two concurrent creates cannot both pass.
 */
export async function conflictOnUnique<T>(resourceType: string, resourceName: string, write: Promise<T>): Promise<T> {
  try {
    return await write;
  } catch (err) {
    if (isUniqueViolation(err)) throw new ConflictError(resourceType, resourceName, { cause: err });
    throw err;
  }
}
