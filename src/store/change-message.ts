// A committed change as other processes on the same database learn of it: the payload of a PostgreSQL NOTIFY, or
// of a SQLite change_log row (sqlite-change-poller.ts), encoded and read back the same way.
import { z } from 'zod';
import { RESOURCE_TYPES, type ChangeEvent, type IdentityRefs, type KvmEntryRef, type ResourceType } from './change-feed.js';

/** PostgreSQL refuses a NOTIFY payload of 8000 bytes or more (and with it the transaction that sends it). */
const MAX_PAYLOAD_BYTES = 7999;

const kvmEntryRefs = z.array(z.object({ scope: z.string(), mapName: z.string(), key: z.string() }));
const identityRefs = z.object({ appIds: z.array(z.string()), developerIds: z.array(z.string()) });
const keyRefs = z.object({ keyIds: z.array(z.string()).min(1), keyAppIds: z.array(z.string()) });

/**
 * `schema` keeps tenants of one database (and parallel test files) apart on PostgreSQL's shared channel; `origin`
 * lets a process skip its own changes, which it already delivered locally at commit (or, when the answer to its
 * COMMIT was lost, replaced by a reload of everything: Session.transaction).
 */
export interface ChangeMessage {
  schema: string;
  origin: string;
  resourceTypes: ResourceType[];
  kvmEntries?: KvmEntryRef[];
  identity?: IdentityRefs;
}

/**
 * How `identity` travels: the apps of keys changed one by one are among `appIds`, and named again in `keyAppIds`, so a
 * process that predates `keyIds` reads those apps whole rather than nothing.
 */
interface WireIdentity {
  appIds: string[];
  developerIds: string[];
  keyIds?: string[];
  keyAppIds?: string[];
}

/**
 * The payload of a change. Entries or owners too long to name in one (keys are rendered from requests) go unnamed:
 * receivers then read every key-value map entry (or the whole snapshot) again, which is slower but never refuses the
 * write. `keyApps` gives the app of each key `identity` names.
 */
export function encodeChange(message: ChangeMessage, keyApps: ReadonlyMap<string, string> = new Map()): string {
  const payload = JSON.stringify({ ...message, identity: message.identity && toWire(message.identity, keyApps) });
  if (Buffer.byteLength(payload) <= MAX_PAYLOAD_BYTES) return payload;
  return JSON.stringify({ ...message, kvmEntries: undefined, identity: undefined });
}

/**
 * The event another process's change is for this one: undefined when it is this process's own, another schema's or
 * names nothing known; 'malformed' when it cannot be read.
 */
export function decodeChange(payload: string | undefined, schema: string, instanceId: string): ChangeEvent | undefined | 'malformed' {
  let message: ChangeMessage;
  try {
    message = JSON.parse(payload ?? '') as ChangeMessage;
  } catch {
    return 'malformed';
  }
  if (message === null || typeof message !== 'object') return 'malformed';
  if (message.schema !== schema || message.origin === instanceId) return undefined;
  const known = new Set<string>(RESOURCE_TYPES);
  const resourceTypes = (Array.isArray(message.resourceTypes) ? message.resourceTypes : []).filter((t) => known.has(t));
  if (resourceTypes.length === 0) return undefined;
  // Entries a receiver cannot read make it a change of any entry, not one of none.
  const entries = kvmEntryRefs.safeParse(message.kvmEntries);
  // Owners a receiver cannot read make it a change of anyone's keys.
  const identity = identityRefs.safeParse(message.identity);
  return { resourceTypes, ...(entries.success && { kvmEntries: entries.data }), ...(identity.success && { identity: fromWire(identity.data, message.identity) }), origin: 'remote' };
}

function toWire(refs: IdentityRefs, keyApps: ReadonlyMap<string, string>): WireIdentity {
  if (!refs.keyIds) return refs;
  const keyAppIds = [...new Set(refs.keyIds.flatMap((k) => keyApps.get(k) ?? []))];
  return { ...refs, appIds: [...refs.appIds, ...keyAppIds], keyAppIds };
}

/** Key ids a receiver cannot read leave their apps to be read whole. */
function fromWire(refs: IdentityRefs, wire: WireIdentity | undefined): IdentityRefs {
  const keys = keyRefs.safeParse(wire);
  if (!keys.success) return refs;
  const keyApps = new Set(keys.data.keyAppIds);
  return { appIds: refs.appIds.filter((id) => !keyApps.has(id)), developerIds: refs.developerIds, keyIds: keys.data.keyIds };
}
