// `tollgate apply`: validate API-management manifests locally, then send them to a running gateway's POST /v1/apply.
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { request } from 'undici';
import { readApimDocuments } from '../apim/manifest-documents.js';
import { configFiles } from '../config/files.js';
import { ConfigError } from '../config/manifest.js';
import type { JsonObject } from '../store/index.js';
import { collect } from './options.js';

/** Where the command writes and what it reads from the environment (tests pass their own). */
export interface ApplyIo {
  out(line: string): void;
  err(line: string): void;
  env: NodeJS.ProcessEnv;
}

const processIo: ApplyIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
};

/** Where each sent document came from, to point the server's `[i].path` errors back at a file. */
interface Origin {
  file: string;
  index: number;
  label: string;
}

interface ErrorAnswer {
  error?: { message?: string; details?: { path?: string; message?: string }[] };
}

interface ApplyAnswer {
  results: { kind: string; name: string; outcome: string }[];
}

function parseAdminUrl(value: string): string {
  try {
    return new URL(value).href;
  } catch {
    throw new InvalidArgumentError(`"${value}" is not a URL (e.g. http://127.0.0.1:8081)`);
  }
}

function fail(io: ApplyIo, exitCode: number, lines: string[]): never {
  for (const line of lines) io.err(`tollgate apply: ${line}`);
  throw new CommanderError(exitCode, 'tollgate.apply', lines[0] ?? 'failed');
}

/** Reads and validates every document; any problem (exit code 2) stops before anything is sent. */
function readLocal(paths: string[], io: ApplyIo): { raws: JsonObject[]; origins: Origin[] } {
  let files: string[];
  try {
    files = configFiles(paths);
  } catch (err) {
    if (err instanceof ConfigError) fail(io, 2, err.problems);
    throw err;
  }
  const problems: string[] = [];
  const raws: JsonObject[] = [];
  const origins: Origin[] = [];
  const seen = new Map<string, Origin>();
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      problems.push(`${file}: ${(err as Error).message}`);
      continue;
    }
    const read = readApimDocuments(text, file);
    problems.push(...read.problems.map((p) => p.line));
    for (const { manifest, raw } of read.documents) {
      const origin = { file, index: manifest.index, label: `${manifest.kind}/${manifest.metadata.name}` };
      const first = seen.get(origin.label);
      if (first) {
        problems.push(`${file} document ${origin.index} (${origin.label}): metadata.name: also defined in ${first.file} document ${first.index}`);
        continue;
      }
      seen.set(origin.label, origin);
      raws.push(raw);
      origins.push(origin);
    }
  }
  if (problems.length > 0) fail(io, 2, problems);
  if (raws.length === 0) fail(io, 2, [`no manifests found in ${paths.join(', ')}`]);
  return { raws, origins };
}

/** `[3].spec.displayName` → the file and document it came from. */
function describeDetail(detail: { path?: string; message?: string }, origins: Origin[]): string {
  const m = /^\[(\d+)\](?:\.(.*))?$/.exec(detail.path ?? '');
  const origin = m ? origins[Number(m[1])] : undefined;
  if (!m || !origin) return `${detail.path ?? ''}: ${detail.message ?? ''}`;
  return `${origin.file} document ${origin.index} (${origin.label}): ${m[2] ?? '(document)'}: ${detail.message ?? ''}`;
}

async function send(admin: string, raws: JsonObject[], dryRun: boolean, io: ApplyIo) {
  const url = new URL('v1/apply', admin.endsWith('/') ? admin : `${admin}/`);
  if (dryRun) url.searchParams.set('dryRun', 'true');
  const token = io.env.TOLLGATE_ADMIN_TOKEN;
  try {
    const res = await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(raws),
    });
    const text = await res.body.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status: res.statusCode, body };
  } catch (err) {
    return fail(io, 1, [`cannot reach the admin API at ${url.origin}: ${(err as Error).message}`]);
  }
}

/**
 * @example tollgate apply -f examples/apim/ --dry-run
 * The lead's main() adds it with `program.addCommand(applyCommand().exitOverride())`.
 */
export function applyCommand(io: ApplyIo = processIo): Command {
  return new Command('apply')
    .description('send API-management manifests (apim.googleapis.com/v1) to a running gateway, all or none')
    .requiredOption('-f, --file <path>', 'manifest file or directory (repeatable)', collect)
    .option('--admin <url>', 'admin API of the gateway (token from TOLLGATE_ADMIN_TOKEN)', parseAdminUrl, 'http://127.0.0.1:8081')
    .option('--dry-run', 'validate on the gateway and report what would change, writing nothing')
    .action(async (opts: { file: string[]; admin: string; dryRun?: boolean }) => {
      const dryRun = opts.dryRun === true;
      const { raws, origins } = readLocal(opts.file, io);
      const { status, body } = await send(opts.admin, raws, dryRun, io);
      if (status === 200) {
        for (const r of (body as ApplyAnswer).results) io.out(`${r.kind.toLowerCase()}/${r.name} ${r.outcome}${dryRun ? ' (dry run)' : ''}`);
        return;
      }
      const error = (body as ErrorAnswer | undefined)?.error;
      fail(io, 1, [
        `the gateway refused the manifests (HTTP ${status}): ${error?.message ?? 'no error message'}`,
        ...(error?.details ?? []).map((d) => describeDetail(d, origins)),
      ]);
    });
}
