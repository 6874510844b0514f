// GET /v1/audit: the audit log, newest first, optionally narrowed to one resource type and name.
import type { AddRoute, ApimAdminDeps } from './admin-deps.js';
import { PAGE_QUERY } from './admin-input.js';
import { auditQuery } from './admin-schemas.js';

export function registerAuditRoutes(add: AddRoute, deps: ApimAdminDeps): void {
  add('GET', '/v1/audit', async (_req, { pageSize, pageToken, ...filter }) => {
    // Entries are already in the list shape: { items, nextPageToken }.
    return { body: await deps.db.audit.list(filter, { pageSize, pageToken }) };
  }, { query: { ...auditQuery, ...PAGE_QUERY } });
}
