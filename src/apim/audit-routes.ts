// GET /v1/audit: the audit log, newest first, optionally narrowed to one resource type and name.
import type { AddRoute, ApimAdminDeps } from './admin-deps.js';
import { readPage, readQuery } from './admin-input.js';
import { auditQuery } from './admin-schemas.js';

export function registerAuditRoutes(add: AddRoute, deps: ApimAdminDeps): void {
  add('GET', '/v1/audit', async (req) => {
    // Entries are already in the list shape: { items, nextPageToken }.
    return { body: await deps.db.audit.list(readQuery(req, auditQuery), readPage(req)) };
  });
}
