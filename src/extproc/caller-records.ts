// A tollgate data plane calling a tollgate ext_proc listener (an ExtensionChain): one usage record per request, the
// caller's. The caller says so in gRPC metadata on the stream, which neither the HTTP client nor Envoy's forwarding can
// set (an operator may, with Envoy's grpc_service.initial_metadata); the listener then writes none, and hands back, in
// its decision's dynamic metadata, whom it identified: where it checks the keys (it takes them out of the request, so
// the caller cannot), the caller's record would otherwise name no app, and billing could charge nobody.
import type { Metadata } from '@grpc/grpc-js';
import type { RequestIdentity } from '../analytics/record.js';
import { loadGrpc } from './grpc.js';
import type { PbStruct, ProcessingResponse } from './messages.js';
import { fromStruct, toValue } from './struct.js';

const KEY = 'x-tollgate-usage-record';
const CALLER = 'caller';
/** The dynamic-metadata namespace of the identity a listener hands back to its calling tollgate. */
const IDENTITY_NAMESPACE = 'tollgate.dev/identity';
const FIELDS = ['developerId', 'developerEmail', 'appId', 'appName', 'keyId', 'productName', 'operationSet'] as const satisfies readonly (keyof RequestIdentity)[];

/** The metadata a calling tollgate sends on every stream it opens. */
export function callerRecordsMetadata(): Metadata {
  const m = new (loadGrpc().Metadata)();
  m.set(KEY, CALLER);
  return m;
}

/** Whether the stream's caller writes the usage record itself. */
export function callerRecords(metadata: Metadata | undefined): boolean {
  return metadata?.get(KEY).includes(CALLER) === true;
}

/** `metadata` (an answer's dynamic metadata, if any) with `identity` added for the caller. */
export function withIdentity(metadata: PbStruct | undefined, identity: RequestIdentity): PbStruct {
  const fields: Record<string, string> = {};
  for (const f of FIELDS) if (identity[f] !== undefined) fields[f] = identity[f];
  return { fields: { ...metadata?.fields, [IDENTITY_NAMESPACE]: toValue(fields) } };
}

/** The identity a tollgate listener handed back in `answer`, if it did. */
export function identityOfAnswer(answer: ProcessingResponse): RequestIdentity | undefined {
  const ns = answer.dynamic_metadata?.fields?.[IDENTITY_NAMESPACE]?.structValue;
  if (!ns) return undefined;
  const values = fromStruct(ns);
  const identity: RequestIdentity = {};
  for (const f of FIELDS) if (typeof values[f] === 'string') identity[f] = values[f];
  return identity.appId === undefined ? undefined : identity;
}
