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

/**
 * A route's query parameters (`shape` names every one it takes), validated. Any other is a 400 naming it, as the
 * analytics route refuses one: ignored, a misspelt `?dryrun=true` deleted for real, `?dryRun=true` on a route without
 * dry runs too, and a misspelt `?apiProduct=` wrote the environment's entry instead of the product's.
 */
export function readQuery<S extends z.ZodRawShape>(req: AdminRequest, shape: S): z.output<z.ZodObject<S>> {
  const known = Object.keys(shape);
  const unknown = new Set([...req.query.keys()].filter((name) => !Object.hasOwn(shape, name)));
  if (unknown.size > 0) {
    const message = known.length > 0 ? `unknown parameter (known: ${known.join(', ')})` : 'unknown parameter (this route takes none)';
    throw invalid('The query parameters are invalid', [...unknown].map((path) => ({ path, message })));
  }
  const parsed = z.object(shape).safeParse(Object.fromEntries(req.query));
  if (!parsed.success) throw invalid('The query parameters are invalid', problems(parsed.error, ''));
  return parsed.data;
}

/** `?pageSize=&pageToken=` of a list (default 100, at most 1000): what it reads is a PageRequest. */
export const PAGE_QUERY = {
  pageSize: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).optional(),
  pageToken: z.string().min(1).optional(),
} satisfies Record<keyof PageRequest, z.ZodType>;

const flag = z.enum(['true', 'false']).optional().transform((v) => v === 'true');

/** Boolean flags of a write (`?dryRun=true&force=true`), false unless given as `true`. */
export function flagsQuery<N extends string>(names: readonly N[]): Record<N, typeof flag> {
  return Object.fromEntries(names.map((name) => [name, flag])) as Record<N, typeof flag>;
}

/** `?action=...`, read as the status it sets; `actions` lists every accepted spelling. */
export function actionQuery<S extends string>(actions: Record<string, S>) {
  const error = `must be one of ${Object.keys(actions).join(', ')}`;
  return {
    action: z
      .string({ error })
      .refine((action) => Object.hasOwn(actions, action), { error })
      .transform((action) => actions[action]),
  };
}
