// What a script sees of a request (and answer) and how its changes come back: variables, headers, the JSON body.
import type { OutgoingHttpHeaders } from 'node:http';
import type { RequestContext } from '../../../gateway/context.js';
import type { ApimState } from '../../types.js';
import { FRAMING_HEADERS } from '../../../lib/framing-headers.js';
import { compileVariable, isFlowVariableName, setVariable } from '../../variables.js';

/** The built-in variables a script can read besides the flow variables. */
const BUILT_INS = [
  'client_id', 'app.id', 'app.name', 'developer.app.id', 'developer.app.name', 'developer.id', 'developer.email',
  'apiproduct.name', 'apiproduct.operationset.name', 'model', 'request.path', 'request.verb', 'client.ip',
].map((name) => [name, compileVariable(name)] as const);


export interface ScriptResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

export interface ScriptInput {
  flow: 'request' | 'response';
  variables: Record<string, string>;
  request: { method: string; path: string; url: string; headers: Record<string, string>; body: unknown };
  response?: ScriptResponse;
}

export interface ScriptOutput {
  variables: Record<string, string | null>;
  requestHeaders: Record<string, string>;
  requestBody: string;
  responseHeaders: Record<string, string> | null;
  responseBody: string | null;
}

/**
 * The headers a script left, as tollgate can use them: its own entries with string values under lower-case names (one
 * the proxy cannot send is refused with the request, or dropped from an answer). A script builds them from anything
 * (`JSON.parse('{"__proto__": {"host": ...}}')`): assigned as it came, an own __proto__ key replaced the headers'
 * prototype and slipped `host` past FRAMING_HEADERS into the upstream request.
 */
function scriptHeaders(raw: unknown): Map<string, string> {
  const out = new Map<string, string>();
  if (raw === null || typeof raw !== 'object') return out;
  for (const [name, value] of Object.entries(raw)) {
    const lower = name.toLowerCase();
    if (typeof value === 'string' && lower !== '__proto__') out.set(lower, value);
  }
  return out;
}

function flat(headers: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name in headers) {
    const v = headers[name];
    if (v !== undefined) out[name] = Array.isArray(v) ? v.join(', ') : String(v);
  }
  return out;
}

export function scriptInput(ctx: RequestContext, state: ApimState, flow: ScriptInput['flow']): ScriptInput {
  const variables: Record<string, string> = {};
  for (const [name, read] of BUILT_INS) {
    const v = read(ctx, state);
    if (v !== undefined) variables[name] = v;
  }
  if (state.vars) for (const [name, v] of state.vars) variables[name] = v;
  return { flow, variables, request: { method: ctx.method, path: ctx.path, url: ctx.url, headers: flat(ctx.headers), body: ctx.body ?? null } };
}

/** The script's changes to the request: flow variables, headers (for later policies and upstream), the body. */
export function applyRequestChanges(ctx: RequestContext, state: ApimState, input: ScriptInput, out: ScriptOutput, bodyBefore: string): void {
  applyVariables(state, out);
  const before = input.request.headers;
  const after = scriptHeaders(out.requestHeaders);
  const upstream = (ctx.upstreamHeaders ??= {});
  for (const [name, value] of after) {
    if (before[name] === value || FRAMING_HEADERS.has(name)) continue;
    // Later policies read the client's headers; the model server gets the change through upstreamHeaders.
    ctx.headers[name] = value;
    upstream[name] = value;
  }
  for (const name in before) {
    if (after.has(name) || FRAMING_HEADERS.has(name)) continue;
    delete ctx.headers[name];
    upstream[name] = null;
  }
  if (ctx.body && out.requestBody !== bodyBefore) {
    const body: unknown = JSON.parse(out.requestBody);
    // The model server is sent a JSON object (an OpenAI request); anything else is the script's mistake.
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new Error('request.body must stay a JSON object');
    ctx.body = body as typeof ctx.body;
    ctx.bodyChanged = true;
  }
}

/** Only flow variables are writable: built-in names stay what tollgate knows them to be. */
export function applyVariables(state: ApimState, out: ScriptOutput): void {
  for (const name in out.variables) {
    const v = out.variables[name];
    if (v !== null && isFlowVariableName(name)) setVariable(state, name, v);
    else if (v === null) state.vars?.delete(name);
  }
}

/** The answer as the script sees it: JSON bodies parsed, anything else as text. */
export function responseInput(status: number, headers: OutgoingHttpHeaders, body: Buffer): { value: ScriptResponse; bodyText: string } {
  const text = body.toString('utf8');
  let parsed: unknown = text;
  let canonical = text;
  try {
    parsed = JSON.parse(text);
    canonical = JSON.stringify(parsed);
  } catch {}
  return { value: { status, headers: flat(headers), body: parsed }, bodyText: canonical };
}

/** Applies header changes to the held answer's headers; returns the new body, or null when it is unchanged. */
export function applyResponseChanges(headers: OutgoingHttpHeaders, before: Record<string, string>, out: ScriptOutput, bodyText: string): Buffer | null {
  const after = scriptHeaders(out.responseHeaders ?? before);
  for (const [name, value] of after) if (before[name] !== value && !FRAMING_HEADERS.has(name)) headers[name] = value;
  for (const name in before) if (!after.has(name) && !FRAMING_HEADERS.has(name)) delete headers[name];
  return out.responseBody !== null && out.responseBody !== bodyText ? Buffer.from(out.responseBody) : null;
}
