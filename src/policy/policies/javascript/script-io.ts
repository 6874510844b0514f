// What a script sees of a request (and answer) and how its changes come back: variables, headers, the JSON body.
import type { OutgoingHttpHeaders } from 'node:http';
import type { RequestContext } from '../../../gateway/context.js';
import { dropUnsendableHeaders } from '../../../gateway/header-values.js';
import type { ApimState } from '../../types.js';
import { FRAMING_HEADERS } from '../../../lib/framing-headers.js';
import { MAX_JSON_DEPTH, nestsDeeperThan } from '../../../lib/json-depth.js';
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

/** Header values as a script leaves them: null is no header (`request.headers.x = context.getVariable('unset')`). */
type ScriptHeaders = Record<string, string | null>;

export interface ScriptOutput {
  variables: Record<string, string | null>;
  requestHeaders: ScriptHeaders;
  requestBody: string;
  responseHeaders: ScriptHeaders | null;
  responseBody: string | null;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** `value` as an object of strings or nulls (headers, variables), or an error naming what the script got wrong. */
function stringsOrNulls(value: unknown, what: string): Record<string, string | null> {
  if (!isObject(value)) throw new Error(`${what} must be an object`);
  for (const [key, v] of Object.entries(value)) {
    if (v !== null && typeof v !== 'string') throw new Error(`${what}['${key.slice(0, 64)}'] must be a string`);
  }
  return value as Record<string, string | null>;
}

/**
 * The worker's output, checked before any of it is used. The prelude writes it with the sandbox's JSON.stringify,
 * which the script can replace, so it may hold anything: used as it came, `"responseBody": {"length": 100000000}` had
 * Buffer.from allocate and read 100 MB on the event loop (8 s) after a script that kept within 50 ms and 1 MiB.
 */
export function scriptOutput(json: string): ScriptOutput {
  let out: unknown;
  try {
    out = JSON.parse(json);
  } catch {
    throw new Error('its output is not JSON');
  }
  if (!isObject(out)) throw new Error('its output is not a JSON object');
  const { requestBody, responseHeaders, responseBody } = out;
  // JSON.stringify leaves out what JSON cannot hold: a body deleted, or made undefined or a function.
  if (typeof requestBody !== 'string') throw new Error('request.body must stay a JSON object');
  if (responseBody !== null && typeof responseBody !== 'string') throw new Error('response.body must stay JSON or text');
  return {
    variables: stringsOrNulls(out.variables, 'flow variables'),
    requestHeaders: stringsOrNulls(out.requestHeaders, 'request.headers'),
    requestBody,
    responseHeaders: responseHeaders === null ? null : stringsOrNulls(responseHeaders, 'response.headers'),
    responseBody,
  };
}

/**
 * The headers a script left, as tollgate can use them: its own entries with string values (null is no header) under
 * lower-case names (one that cannot be sent fails a request script, and is dropped from an answer). A script builds
 * them from anything (`JSON.parse('{"__proto__": {"host": ...}}')`): assigned as it came, an own __proto__ key replaced
 * the headers' prototype and slipped `host` past FRAMING_HEADERS into the upstream request.
 */
function scriptHeaders(raw: ScriptHeaders): Map<string, string> {
  const out = new Map<string, string>();
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
  const changed: Record<string, string> = {};
  for (const [name, value] of after) if (before[name] !== value && !FRAMING_HEADERS.has(name)) changed[name] = value;
  // Checked here, where it is the script's fault (500 ScriptExecutionFailed): the model server's client refused such a
  // header later, which the proxy reported as the client's bad request (400).
  const [unsendable] = dropUnsendableHeaders(changed);
  if (unsendable !== undefined) throw new Error(`request.headers['${unsendable.slice(0, 64)}'] cannot be sent: a header name must be an HTTP token, and a value may hold no control characters (CR, LF, NUL…) nor characters past U+00FF`);
  const upstream = (ctx.upstreamHeaders ??= {});
  for (const name in changed) {
    const value = changed[name];
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
    // Held to the depth a client's body is (openai-request.ts): later stages recurse over the body, and a script's
    // nested 200,000 levels deep overflowed the stack when it was serialized for the model server.
    if (nestsDeeperThan(Buffer.from(out.requestBody), MAX_JSON_DEPTH)) throw new Error(`request.body nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep`);
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
