// Compiling APIOperationSet specs into OperationSetGrants, and indexing them by the products they serve.
import { apiOperationSetSpec, type ApiOperationSetSpec } from '../config/apim-kinds.js';
import type { CompiledQuota, OperationSetGrant } from './identity.js';
import { windowsOf } from './quota-window.js';
import { compileWildcardPattern, DEEP, piecesOf, SEGMENT } from '../lib/wildcard-pattern.js';

type PathMatcher = (path: string) => boolean;

const SLASH = 47;

/**
 * Apigee's resource paths: `/` and `/**` match everything, a trailing `/**` matches the prefix and any suffix,
 * `*` stands for exactly one segment; anything else matches exactly.
 */
export function compilePath(pattern: string): PathMatcher {
  if (pattern === '/' || pattern === '/**') return () => true;
  if (!pattern.includes('*')) return (path) => path === pattern;
  // Matched without backtracking (wildcard-pattern.ts): as a regular expression, `/v1/*-*-*` took 77 s against a
  // path of 8,000 dashes.
  const pieces: number[] = [];
  for (const part of pattern.split('/').slice(1)) {
    if (part === '**') pieces.push(DEEP);
    else pieces.push(SLASH, ...piecesOf(part, '*'));
  }
  return compileWildcardPattern(pieces, SEGMENT);
}

function compileOperations(ops: ApiOperationSetSpec['restOperations']): OperationSetGrant['matches'] {
  if (!ops || ops.length === 0) return () => true;
  const compiled = ops.map((op) => ({ path: compilePath(op.path), methods: op.methods && op.methods.length > 0 ? new Set(op.methods) : null }));
  return (method, path) => {
    for (const op of compiled) if ((op.methods === null || op.methods.has(method)) && op.path(path)) return true;
    return false;
  };
}

/** compileOperationSet('chat-gold', spec) — `spec` as declared (validated here) or already parsed. */
export function compileOperationSet(name: string, spec: unknown): OperationSetGrant {
  return compileParsed(name, apiOperationSetSpec.parse(spec));
}

function compileQuota<Q extends { limit: number; interval: number; timeUnit: CompiledQuota['timeUnit'] }>(q: Q | undefined): (Q & CompiledQuota) | null {
  return q ? { ...q, windowAt: windowsOf(q.interval, q.timeUnit) } : null;
}

function compileParsed(name: string, s: ApiOperationSetSpec): OperationSetGrant {
  const models = s.llmOperations?.models;
  const objectives = s.llmOperations?.objectives;
  return {
    name,
    matches: compileOperations(s.restOperations),
    models: models ? new Set(models) : null,
    objectives: objectives ? new Set(objectives) : null,
    quota: compileQuota(s.quota),
    llmTokenQuota: compileQuota(s.llmOperations?.llmTokenQuota),
  };
}

/** Product name → the operation sets that reference it (through apiProductRefs), in declaration order. */
export function operationSetsByProduct(sets: readonly { name: string; spec: unknown }[]): Map<string, OperationSetGrant[]> {
  const out = new Map<string, OperationSetGrant[]>();
  for (const set of sets) {
    const spec = apiOperationSetSpec.parse(set.spec);
    const grant = compileParsed(set.name, spec);
    for (const ref of spec.apiProductRefs) {
      const list = out.get(ref.name);
      if (list) list.push(grant);
      else out.set(ref.name, [grant]);
    }
  }
  return out;
}
