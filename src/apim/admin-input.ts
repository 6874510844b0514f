// Reading admin requests: JSON bodies and query parameters checked with zod; failures are 400s with field paths.
import { z } from 'zod';
import { AdminError, type AdminRequest } from '../gateway/admin-router.js';
import { isStorableText, MAX_PAGE_SIZE, UNSTORABLE_TEXT_MESSAGE, unstorableTextPaths, type PageRequest } from '../store/index.js';

export interface FieldProblem {
  path: string;
  message: string;
}

/** `apiProducts[1]`, `attributes[0].name` — the same spelling the config errors use. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

export function invalid(message: string, details: FieldProblem[]): AdminError {
  return new AdminError(400, 'invalid', message, details);
}

function problems(error: z.ZodError, prefix: string): FieldProblem[] {
  return error.issues.map((i) => ({ path: fieldPath([...(prefix ? [prefix] : []), ...i.path]) || '(body)', message: i.message }));
}

/** The JSON body, validated; malformed JSON is already a 400 `invalid_json` from the router. */
export async function readBody<S extends z.ZodType>(req: AdminRequest, schema: S): Promise<z.output<S>> {
  const json = await req.json();
  // Checked on the raw JSON (keys too): PostgreSQL would refuse these strings with an error, not a 400.
  const unstorable = unstorableTextPaths(json);
  if (unstorable.length > 0) throw invalid('The request body is invalid', unstorable.map((p) => ({ path: fieldPath(p) || '(body)', message: UNSTORABLE_TEXT_MESSAGE })));
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw invalid('The request body is invalid', problems(parsed.error, ''));
  return parsed.data;
}

/**
 * Path and query parameters the database could not be asked about (NUL, unpaired surrogates: PostgreSQL answers
 * those with an error, which would be a 500) are a 400 naming the parameter, before any handler runs.
 */
export function checkRequestText(req: AdminRequest): void {
  const problems: FieldProblem[] = [];
  for (const [name, value] of [...Object.entries(req.params), ...req.query]) {
    if (!isStorableText(value) || !isStorableText(name)) problems.push({ path: isStorableText(name) ? name : '(query)', message: UNSTORABLE_TEXT_MESSAGE });
  }
  if (problems.length > 0) throw invalid('The request path or query is invalid', problems);
}

/** Query parameters, validated; parameters the schema does not name are ignored. */
export function readQuery<S extends z.ZodType>(req: AdminRequest, schema: S): z.output<S> {
  const parsed = schema.safeParse(Object.fromEntries(req.query));
  if (!parsed.success) throw invalid('The query parameters are invalid', problems(parsed.error, ''));
  return parsed.data;
}

const pageQuery = z.object({
  pageSize: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).optional(),
  pageToken: z.string().min(1).optional(),
});

/** `?pageSize=&pageToken=` (default 100, at most 1000). */
export function readPage(req: AdminRequest): PageRequest {
  return readQuery(req, pageQuery);
}

const flag = z.enum(['true', 'false']).optional();

/**
 * The boolean query flags of a write (`?dryRun=true&force=true`). Any other parameter is a 400 naming it, as the
 * analytics route refuses one: ignored, a misspelt `?dryrun=true` applied for real.
 */
export function readFlags<N extends string>(req: AdminRequest, names: readonly N[]): Record<N, boolean> {
  const unknown = new Set([...req.query.keys()].filter((key) => !(names as readonly string[]).includes(key)));
  if (unknown.size > 0) throw invalid('The query parameters are invalid', [...unknown].map((path) => ({ path, message: `unknown parameter (known: ${names.join(', ')})` })));
  const given = readQuery(req, z.object(Object.fromEntries(names.map((name) => [name, flag]))));
  return Object.fromEntries(names.map((name) => [name, given[name] === 'true'])) as Record<N, boolean>;
}

/** `?action=...`, mapped to the status it sets; `actions` lists every accepted spelling. */
export function readAction<S extends string>(req: AdminRequest, actions: Record<string, S>): S {
  const action = req.query.get('action') ?? '';
  const status = Object.hasOwn(actions, action) ? actions[action] : undefined;
  if (status === undefined) {
    throw invalid('Unknown action', [{ path: 'action', message: `must be one of ${Object.keys(actions).join(', ')}` }]);
  }
  return status;
}
