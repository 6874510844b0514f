// google.protobuf.Struct, the shape of ext_proc's metadata, to and from plain values.
import type { PbStruct, PbValue } from './messages.js';

export type Plain = string | number | boolean | null | Plain[] | { [key: string]: Plain };

export function toValue(v: Plain): PbValue {
  if (v === null) return { nullValue: 0 };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toValue) } };
  return { structValue: toStruct(v) };
}

export function toStruct(o: { [key: string]: Plain }): PbStruct {
  const fields: Record<string, PbValue> = {};
  for (const k in o) fields[k] = toValue(o[k]);
  return { fields };
}

export function fromValue(v: PbValue | undefined): Plain | undefined {
  if (!v) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.numberValue !== undefined) return v.numberValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.listValue) return (v.listValue.values ?? []).map((x) => fromValue(x) ?? null);
  if (v.structValue) return fromStruct(v.structValue);
  return null;
}

export function fromStruct(s: PbStruct | undefined): { [key: string]: Plain } {
  const out: { [key: string]: Plain } = {};
  for (const k in s?.fields) out[k] = fromValue(s.fields[k]) ?? null;
  return out;
}

/** One key of one metadata namespace, e.g. envoy.lb / x-gateway-destination-endpoint-served. */
export function metadataValue(meta: Record<string, PbStruct> | undefined, namespace: string, key: string): Plain | undefined {
  const ns = meta?.[namespace];
  return ns ? fromValue(ns.fields?.[key]) : undefined;
}
