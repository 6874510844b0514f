// What the commands that talk to a running gateway's admin API share: the --admin flag, the bearer token from
// TOLLGATE_ADMIN_TOKEN, one line per problem on stderr, and exit codes (1 unreachable or refused, 2 bad input).
import type { IncomingHttpHeaders } from 'node:http';
import { CommanderError, InvalidArgumentError, Option } from 'commander';
import { request } from 'undici';
import { contentTypeOf, isJsonMediaType, mediaTypeOf } from '../gateway/media-type.js';
import { readAdminToken } from './admin-token.js';

/** Where a command writes and what it reads from the environment (tests pass their own). */
export interface CommandIo {
  out(line: string): void;
  err(line: string): void;
  env: NodeJS.ProcessEnv;
}

export const processIo: CommandIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
};

/** The admin API's error answer. */
export interface AdminErrorBody {
  message?: string;
  details?: { path?: string; message?: string }[];
}

/**
 * `localhost:8081`, `127.0.0.1:8081`: a host and port without a scheme, read as http. URL took `localhost:` for a
 * scheme, and the command then failed with "Invalid URL".
 */
const HOST_PORT = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+):\d+$/i;

function parseAdminUrl(value: string): string {
  let url: URL | undefined;
  try {
    url = new URL(HOST_PORT.test(value) ? `http://${value}` : value);
  } catch {
    // Not a URL: said below.
  }
  if (url?.protocol !== 'http:' && url?.protocol !== 'https:') throw new InvalidArgumentError(`"${value}" is not an http:// or https:// URL (e.g. http://127.0.0.1:8081)`);
  return url.href;
}

export function adminOption(): Option {
  return new Option('--admin <url>', 'admin API of the gateway (token from TOLLGATE_ADMIN_TOKEN)').argParser(parseAdminUrl).default('http://127.0.0.1:8081');
}

/** `path` (e.g. `v1/apply`) under the admin API's base URL. */
export function adminUrl(admin: string, path: string): URL {
  return new URL(path, admin.endsWith('/') ? admin : `${admin}/`);
}

/** Writes `tollgate <command>: <line>` for each line and ends the command with `exitCode`. */
export function failCommand(command: string, io: CommandIo, exitCode: number, lines: string[]): never {
  for (const line of lines) io.err(`tollgate ${command}: ${line}`);
  throw new CommanderError(exitCode, `tollgate.${command}`, lines[0] ?? 'failed');
}

export interface AdminAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The JSON answer; undefined for a CSV one. */
  body: unknown;
  /** `error` of a JSON error answer. */
  error?: AdminErrorBody;
}

/** The longest wait for the admin API's answer to start, and between its chunks. */
const ADMIN_TIMEOUT_MS = 60_000;

/**
 * What a 200 answer must be: tollgate's JSON, of the shape the command reads when `shape` is given, or with `csv` a
 * text/csv table. Any other answer is JSON (an error's), whatever its status.
 */
export interface Expected {
  shape?: (body: unknown) => boolean;
  csv?: boolean;
}

/**
 * One admin API call with the token. An unreachable gateway, and an answer that is not tollgate's (a login page or
 * another service answering at --admin), end the command with exit code 1: their shapes were trusted, and the command
 * failed on a TypeError, or printed the page as CSV.
 */
export async function callAdmin(
  command: string,
  io: CommandIo,
  url: URL,
  init: { method?: 'GET' | 'POST'; json?: unknown; timeoutMs?: number; expect?: Expected } = {},
): Promise<AdminAnswer> {
  const timeoutMs = init.timeoutMs ?? ADMIN_TIMEOUT_MS;
  const { token, problem } = readAdminToken(io.env);
  if (problem) failCommand(command, io, 2, [problem]);
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  if (init.json !== undefined) headers['content-type'] = 'application/json';
  let status: number;
  let answerHeaders: IncomingHttpHeaders;
  let text: string;
  try {
    const res = await request(url, {
      method: init.method ?? 'GET',
      headers,
      body: init.json === undefined ? undefined : JSON.stringify(init.json),
      // An admin port that accepts connections but never answers must not hang the command (undici waits 300 s).
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    status = res.statusCode;
    answerHeaders = res.headers;
    text = await res.body.text();
  } catch (err) {
    return failCommand(command, io, 1, [`cannot reach the admin API at ${url.origin}: ${(err as Error).message}`]);
  }
  const type = contentTypeOf(answerHeaders['content-type']);
  const notTollgate = (what: string): never =>
    failCommand(command, io, 1, [`${url.origin} did not answer like tollgate's admin API (HTTP ${status}, ${what}): is --admin the gateway's admin address?`]);
  if (init.expect?.csv && status === 200) {
    if (type === undefined || mediaTypeOf(type) !== 'text/csv') notTollgate(type ?? 'no content-type');
    return { status, headers: answerHeaders, text, body: undefined };
  }
  if (!isJsonMediaType(type)) notTollgate(type ?? 'no content-type');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    notTollgate(`${type} that does not parse`);
  }
  if (status === 200 && init.expect?.shape && !init.expect.shape(body)) notTollgate(`JSON that is not an answer to ${url.pathname}`);
  return { status, headers: answerHeaders, text, body, error: (body as { error?: AdminErrorBody } | null)?.error };
}
