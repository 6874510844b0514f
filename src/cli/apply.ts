// `tollgate apply` and `tollgate delete`: read API-management manifests locally (apply validates them whole, delete
// reads kind and name), then send them to a running gateway's POST /v1/apply or /v1/delete.
import { Command } from 'commander';
import { readApimDocuments, readApimTargets, type DocumentProblem } from '../apim/manifest-documents.js';
import { configFiles, readBounded } from '../config/files.js';
import { ConfigError } from '../config/manifest.js';
import type { JsonObject } from '../store/index.js';
import { adminOption, adminUrl, callAdmin, failCommand, processIo, type AdminErrorBody, type CommandIo } from './admin-client.js';
import { collect } from './options.js';

/** Where each sent document came from, to point the server's `[i].path` errors back at a file. */
interface Origin {
  file: string;
  index: number;
  label: string;
}

interface ResultsAnswer {
  results: { kind: string; name: string; outcome: string }[];
  /** Objects applied before that a changed ApimTemplateRule now forbids: they stay applied, and the user is told. */
  violations?: string[];
}

function isResultsAnswer(body: unknown): boolean {
  const answer = body as Partial<ResultsAnswer> | null;
  return Array.isArray(answer?.results) && answer.results.every((r) => typeof r?.kind === 'string' && typeof r.name === 'string' && typeof r.outcome === 'string');
}

/** What differs between the two commands. */
interface Verb {
  name: 'apply' | 'delete';
  /** The documents to send, as read from one file (delete sends only what names each object). */
  read(text: string, file: string): { documents: { raw: JsonObject; kind: string; name: string; index: number }[]; problems: DocumentProblem[] };
}

const APPLY: Verb = {
  name: 'apply',
  read: (text, file) => {
    const read = readApimDocuments(text, file);
    return { problems: read.problems, documents: read.documents.map(({ manifest: m, raw }) => ({ raw, kind: m.kind, name: m.metadata.name, index: m.index })) };
  },
};

const DELETE: Verb = {
  name: 'delete',
  read: (text, file) => {
    const read = readApimTargets(text, file);
    return { problems: read.problems, documents: read.targets.map((t) => ({ raw: { kind: t.kind, metadata: { name: t.name } }, ...t })) };
  },
};

/** Reads every document; any problem (exit code 2) stops before anything is sent. */
function readLocal(verb: Verb, paths: string[], io: CommandIo): { raws: JsonObject[]; origins: Origin[] } {
  let files: string[];
  try {
    files = configFiles(paths);
  } catch (err) {
    if (err instanceof ConfigError) failCommand(verb.name, io, 2, err.problems);
    throw err;
  }
  const problems: string[] = [];
  const raws: JsonObject[] = [];
  const origins: Origin[] = [];
  const seen = new Map<string, Origin>();
  for (const file of files) {
    let text: string;
    try {
      // As `serve` reads --config files: regular files of at most 4 MiB, UTF-8 or refused.
      text = readBounded(file);
    } catch (err) {
      problems.push(...(err instanceof ConfigError ? err.problems : [`${file}: ${(err as Error).message}`]));
      continue;
    }
    const read = verb.read(text, file);
    problems.push(...read.problems.map((p) => p.line));
    for (const { raw, kind, name, index } of read.documents) {
      const origin = { file, index, label: `${kind}/${name}` };
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
  if (problems.length > 0) failCommand(verb.name, io, 2, problems);
  if (raws.length === 0) failCommand(verb.name, io, 2, [`no manifests found in ${paths.join(', ')}`]);
  return { raws, origins };
}

/** `[3].spec.displayName` → the file and document it came from; a detail with no path (about no document) is its message. */
function describeDetail(detail: NonNullable<AdminErrorBody['details']>[number], origins: Origin[]): string {
  const m = /^\[(\d+)\](?:\.(.*))?$/.exec(detail.path ?? '');
  const origin = m ? origins[Number(m[1])] : undefined;
  if (!m || !origin) return detail.path ? `${detail.path}: ${detail.message ?? ''}` : (detail.message ?? '');
  return `${origin.file} document ${origin.index} (${origin.label}): ${m[2] ?? '(document)'}: ${detail.message ?? ''}`;
}

function manifestCommand(verb: Verb, description: string, io: CommandIo): Command {
  const command = new Command(verb.name)
    .description(description)
    .requiredOption('-f, --file <path>', 'manifest file or directory (repeatable)', collect)
    .addOption(adminOption())
    .option('--dry-run', 'check on the gateway and report what would change, writing nothing');
  if (verb === DELETE) command.option('--force', 'also delete the APIMExtensionPolicy, which turns API management off');
  return command.action(async (opts: { file: string[]; admin: string; dryRun?: boolean; force?: boolean }) => {
    const dryRun = opts.dryRun === true;
    const { raws, origins } = readLocal(verb, opts.file, io);
    const url = adminUrl(opts.admin, `v1/${verb.name}`);
    if (dryRun) url.searchParams.set('dryRun', 'true');
    if (opts.force) url.searchParams.set('force', 'true');
    const { status, body, error } = await callAdmin(verb.name, io, url, { method: 'POST', json: raws, expect: { shape: isResultsAnswer } });
    if (status === 200) {
      const answer = body as ResultsAnswer;
      for (const r of answer.results) io.out(`${r.kind.toLowerCase()}/${r.name} ${r.outcome.replace('_', ' ')}${dryRun ? ' (dry run)' : ''}`);
      for (const v of answer.violations ?? []) io.err(`tollgate ${verb.name}: warning: ${v}${dryRun ? ' (dry run)' : ''}`);
      return;
    }
    failCommand(verb.name, io, 1, [
      `the gateway refused the manifests (HTTP ${status}): ${error?.message ?? 'no error message'}`,
      ...(error?.details ?? []).map((d) => describeDetail(d, origins)),
    ]);
  });
}

/**
 * @example tollgate apply -f examples/apim/ --dry-run
 * main() adds it with `program.addCommand(applyCommand().exitOverride())`.
 */
export function applyCommand(io: CommandIo = processIo): Command {
  return manifestCommand(APPLY, 'send API-management manifests (apim.googleapis.com/v1) to a running gateway, all or none', io);
}

/** @example tollgate delete -f examples/apim/spike.yaml: deletes the objects the files name (kind and metadata.name), all or none. */
export function deleteCommand(io: CommandIo = processIo): Command {
  return manifestCommand(DELETE, 'delete the API-management objects the manifests name from a running gateway, all or none', io);
}
