// Maps the store's typed errors onto admin API errors: not found → 404, already exists → 409, bad page token → 400.
import { AdminError, type AdminHandler } from '../gateway/admin-router.js';
import { ConflictError, InvalidPageTokenError, NotFoundError } from '../store/index.js';
import { checkRequestText, invalid } from './admin-input.js';

/** The request field that names each resource, for the 409's field path. */
const IDENTITY_FIELD: Record<string, string> = { apiproduct: 'name', developer: 'email', app: 'name', credential: 'consumerKey' };

function toAdminError(err: unknown): unknown {
  if (err instanceof NotFoundError) return new AdminError(404, 'not_found', err.message);
  if (err instanceof ConflictError) {
    return new AdminError(409, 'already_exists', err.message, [{ path: IDENTITY_FIELD[err.resourceType] ?? 'name', message: 'already exists' }]);
  }
  if (err instanceof InvalidPageTokenError) return invalid('The query parameters are invalid', [{ path: 'pageToken', message: err.message }]);
  return err;
}

export function handled(handler: AdminHandler): AdminHandler {
  return async (req) => {
    try {
      checkRequestText(req);
      return await handler(req);
    } catch (err) {
      throw toAdminError(err);
    }
  };
}
