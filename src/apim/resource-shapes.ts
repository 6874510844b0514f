// The admin API's answers in Apigee's resource shapes. Times are epoch milliseconds (numbers); a key's
// expiresAt is -1 when it never expires, as in Apigee. Secrets appear only in issuedCredentialResource.
import type { ApiProduct, App, Credential, Developer, IssuedCredential, JsonObject, OperationSet, Page } from '../store/index.js';

export function epochMs(iso: string): number {
  return Date.parse(iso);
}

/** The one list shape of every listing. */
export function pageBody<T, R>(page: Page<T>, toResource: (item: T) => R): { items: R[]; nextPageToken?: string } {
  return { items: page.items.map(toResource), nextPageToken: page.nextPageToken };
}

function productRefs(spec: JsonObject): string[] {
  const refs = spec.apiProductRefs;
  if (!Array.isArray(refs)) return [];
  return refs.flatMap((r) => (r !== null && typeof r === 'object' && !Array.isArray(r) && typeof r.name === 'string' ? [r.name] : []));
}

/** `sets`: every operation set; the product lists those that reference it (what it grants). */
export function productResource(p: ApiProduct, sets: readonly OperationSet[]) {
  return {
    name: p.name,
    displayName: p.displayName,
    description: p.description,
    approvalType: p.approvalType,
    attributes: p.attributes,
    operationSets: sets.filter((s) => productRefs(s.spec).includes(p.name)).map((s) => s.name),
    owner: p.owner,
    createdAt: epochMs(p.createdAt),
    lastModifiedAt: epochMs(p.updatedAt),
  };
}

export function developerResource(d: Developer) {
  return {
    developerId: d.id,
    email: d.email,
    firstName: d.firstName,
    lastName: d.lastName,
    userName: d.userName,
    status: d.status,
    attributes: d.attributes,
    createdAt: epochMs(d.createdAt),
    lastModifiedAt: epochMs(d.updatedAt),
  };
}

/** Without the key or secret: only their hashes are stored. */
export function credentialResource(c: Credential) {
  return {
    keyId: c.keyId,
    status: c.status,
    apiProducts: c.apiProducts,
    issuedAt: epochMs(c.issuedAt),
    expiresAt: c.expiresAt === null ? -1 : epochMs(c.expiresAt),
  };
}

/** The answer that creates a key: the only one that carries it (and its secret, null for an import without one). */
export function issuedCredentialResource(issued: IssuedCredential) {
  return { consumerKey: issued.consumerKey, consumerSecret: issued.consumerSecret, ...credentialResource(issued.credential) };
}

export type CredentialResource = ReturnType<typeof credentialResource> | ReturnType<typeof issuedCredentialResource>;

export function appResource(app: App, credentials: CredentialResource[]) {
  return {
    appId: app.id,
    name: app.name,
    developerId: app.developerId,
    status: app.status,
    attributes: app.attributes,
    callbackUrl: app.callbackUrl,
    credentials,
    createdAt: epochMs(app.createdAt),
    lastModifiedAt: epochMs(app.updatedAt),
  };
}
