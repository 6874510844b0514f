// `tollgate get KIND [NAME]`: what a running gateway's store holds of an API-management kind (GET /v1/manifests),
// as a table, or as YAML or JSON manifests that `tollgate apply -f` takes back unchanged.
import { Command, InvalidArgumentError, Option } from 'commander';
import { Document, isScalar, Scalar, visit } from 'yaml';
import { APIM_KINDS } from '../apim/manifest-documents.js';
import { resourceName } from '../config/manifest.js';
import type { StoredDocument } from '../apim/manifest-tables.js';
import { adminOption, adminUrl, callAdmin, failCommand, processIo, type CommandIo } from './admin-client.js';

/** `spikearrest` or `SpikeArrest` → `SpikeArrest`, as kubectl takes kinds in any case. */
function parseKind(value: string): string {
  const kind = APIM_KINDS.find((k) => k.toLowerCase() === value.toLowerCase());
  if (!kind) throw new InvalidArgumentError(`"${value}" is not an API-management kind (${APIM_KINDS.join(', ')})`);
  return kind;
}

/**
 * A manifest name (letters, digits, - _ .), as apply takes them: an empty one (an unset shell variable) or `.` asked
 * for the kind's list, which was then read as one object.
 */
function parseName(value: string): string {
  const checked = resourceName.safeParse(value);
  if (!checked.success) throw new InvalidArgumentError(`"${value}" is not an object name: ${checked.error.issues[0].message}`);
  return value;
}

function table(documents: StoredDocument[]): string[] {
  const rows = documents.map((d) => [d.metadata.name, d.status.owner, new Date(d.status.lastModifiedAt).toISOString()]);
  const header = ['NAME', 'OWNER', 'LAST MODIFIED'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [header, ...rows].map((r) => r.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd());
}

/**
 * A document as YAML that apply reads back as it is: apply reads `<<` keys as merge keys (as kubectl does), so a
 * literal `<<` key (a callout body's, an OpenAPI document's) is written quoted, which reads as a plain key.
 */
function yamlOf(document: StoredDocument): string {
  const doc = new Document(document);
  visit(doc, {
    Pair(_, pair) {
      if (isScalar(pair.key) && pair.key.value === '<<') pair.key.type = Scalar.QUOTE_DOUBLE;
    },
  });
  return doc.toString().trimEnd();
}

/** What the table reads of a stored document, and what a page of them is. */
function isDocument(body: unknown): boolean {
  const d = body as Partial<StoredDocument> | null;
  return typeof d?.metadata?.name === 'string' && typeof d.status?.owner === 'string' && typeof d.status.lastModifiedAt === 'number';
}
function isPage(body: unknown): boolean {
  const items = (body as { items?: unknown } | null)?.items;
  return Array.isArray(items) && items.every(isDocument);
}

async function fetchDocuments(io: CommandIo, admin: string, kind: string, name: string | undefined): Promise<StoredDocument[]> {
  const base = `v1/manifests/${encodeURIComponent(kind)}`;
  const documents: StoredDocument[] = [];
  let pageToken: string | undefined;
  do {
    const url = adminUrl(admin, name === undefined ? base : `${base}/${encodeURIComponent(name)}`);
    if (name === undefined) url.searchParams.set('pageSize', '1000');
    if (pageToken) url.searchParams.set('pageToken', pageToken);
    const { status, body, error, text } = await callAdmin('get', io, url, { expect: { shape: name === undefined ? isPage : isDocument } });
    if (status !== 200) failCommand('get', io, 1, [`the gateway refused (HTTP ${status}): ${error?.message ?? (text.trim() || 'no error message')}`]);
    if (name !== undefined) return [body as StoredDocument];
    const page = body as { items: StoredDocument[]; nextPageToken?: string };
    documents.push(...page.items);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return documents;
}

/** @example tollgate get spikearrest -o yaml > spike-arrests.yaml */
export function getCommand(io: CommandIo = processIo): Command {
  return new Command('get')
    .description('show the API-management objects a running gateway stores of one kind (GET /v1/manifests)')
    .argument('<kind>', `one of ${APIM_KINDS.join(', ')} (any case)`, parseKind)
    .argument('[name]', 'one object (default: all of the kind)', parseName)
    .addOption(adminOption())
    .addOption(new Option('-o, --output <format>', 'table, or manifests apply takes back').choices(['table', 'yaml', 'json']).default('table'))
    .action(async (kind: string, name: string | undefined, opts: { admin: string; output: 'table' | 'yaml' | 'json' }) => {
      const documents = await fetchDocuments(io, opts.admin, kind, name);
      if (opts.output === 'json') io.out(JSON.stringify(name === undefined ? documents : documents[0], null, 2));
      else if (opts.output === 'yaml') io.out(documents.map(yamlOf).join('\n---\n'));
      else if (documents.length === 0) io.out(`no ${kind} objects`);
      else for (const line of table(documents)) io.out(line);
    });
}
