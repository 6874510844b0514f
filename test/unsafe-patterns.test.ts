// A configured regular expression V8 may take exponential time on (nested quantifiers) runs on RE2, in linear time:
// one such pattern on V8's backtracking engine would let a prompt of a few dozen characters stall every request. One
// RE2 cannot run either (lookaround, backreferences) is refused wherever configuration enters a gateway: POST
// /v1/apply answers 400 naming the field, `tollgate apply` stops before sending (exit 2), and a gateway does not
// start on --config files whose OASValidation document holds one.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, type CommanderError } from 'commander';
import { applyCommand } from '../src/cli/apply.js';
import { ConfigError } from '../src/config/manifest.js';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { silentLogger } from '../src/lib/logger.js';
import { call } from './helpers/apim-admin.js';
import { poolAndModel } from './helpers/manifests.js';
import { startStub } from './helpers/stub-upstream.js';
import { manifestOf } from '../src/config/manifest.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const V = 'apim.googleapis.com/v1';
const SLOW = '(x+x+)+(?=y)';
const WHY = 'the pattern may take exponential time in V8';

const guard = (patterns: string[]) => ({ apiVersion: V, kind: 'SanitizeUserPrompt', metadata: { name: 'guard' }, spec: { filters: { denyList: { patterns } } } });

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tollgate-unsafe-patterns-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('POST /v1/apply', () => {
  let gw: Gateway;
  before(async () => {
    gw = await startGateway({ configPaths: [], manifests: [], ...LOOPBACK, logger: silentLogger });
  });
  after(async () => {
    await gw?.close();
  });

  test('answers 400 naming the denyList pattern, applies nothing; an ordinary pattern is applied', async () => {
    const refused = await call(gw.adminUrl, 'POST', '/v1/apply', [guard([String.raw`\bINC-\d{4}\b`, SLOW])]);
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assert.equal(refused.body.error.details.length, 1, JSON.stringify(refused.body));
    assert.equal(refused.body.error.details[0].path, '[0].spec.filters.denyList.patterns[1]');
    assert.ok(refused.body.error.details[0].message.startsWith(WHY), refused.body.error.details[0].message);
    assert.equal(await gw.apim.db.manifests.find('SanitizeUserPrompt', 'guard'), undefined, 'nothing was applied');

    const ordinary = await call(gw.adminUrl, 'POST', '/v1/apply', [guard([String.raw`\b\d{3}-\d{2}-\d{4}\b`, String.raw`^[A-Z]{2}\d+$`])]);
    assert.equal(ordinary.status, 200, JSON.stringify(ordinary.body));
  });
});

test('tollgate apply stops before sending (exit 2), naming the file, document and field', async () => {
  const file = join(dir, 'guard.yaml');
  await writeFile(file, JSON.stringify(guard([SLOW])));
  const err: string[] = [];
  // Nothing listens on port 9: a request sent anyway would fail with exit code 1, not 2.
  const command = applyCommand({ out: () => {}, err: (l) => err.push(l), env: {} }).exitOverride();
  const program = new Command('tollgate').exitOverride().addCommand(command);
  await assert.rejects(program.parseAsync(['apply', '-f', file, '--admin', 'http://127.0.0.1:9'], { from: 'user' }), (e: CommanderError) => e.exitCode === 2);
  assert.equal(err.length, 1, err.join('\n'));
  assert.ok(err[0].startsWith(`tollgate apply: ${file} document 0 (SanitizeUserPrompt/guard): spec.filters.denyList.patterns[0]: ${WHY}`), err[0]);
});

test('a gateway does not start on config files whose OASValidation document has such a pattern, naming it', async () => {
  const file = join(dir, 'apim.yaml');
  const openApi = { openapi: '3.0.3', paths: { '/v1/chat/completions': { post: { requestBody: { content: { 'application/json': { schema: { type: 'object', properties: { user: { type: 'string', pattern: SLOW } } } } } } } } } };
  const docs = [
    { apiVersion: V, kind: 'APIMExtensionPolicy', metadata: { name: 'ext' }, spec: { targetRef: { name: 'tollgate' } } },
    { apiVersion: V, kind: 'OASValidation', metadata: { name: 'contract' }, spec: { openApi } },
    { apiVersion: V, kind: 'ApimTemplate', metadata: { name: 'edge' }, spec: { templates: [{ policies: [{ kind: 'OASValidation', name: 'contract' }] }] } },
  ];
  await writeFile(file, docs.map((d) => JSON.stringify(d)).join('\n---\n'));
  let refusal: unknown;
  try {
    const gw = await startGateway({ configPaths: [file], ...LOOPBACK, logger: silentLogger });
    await gw.close();
  } catch (err) {
    refusal = err;
  }
  assert.ok(refusal instanceof ConfigError, `started, or failed otherwise: ${String(refusal)}`);
  const schema = '/paths/~1v1~1chat~1completions/post/requestBody/content/application~1json/schema';
  assert.equal(refusal.problems.length, 1, refusal.problems.join('\n'));
  assert.ok(refusal.problems[0].startsWith(`${file} document 1 (OASValidation/contract): spec: ${schema}: pattern "${SLOW}": ${WHY}`), refusal.problems[0]);
});

test('a deny-list pattern with nested quantifiers runs on RE2: a prompt V8 would stall on is answered, a match is blocked', async (t) => {
  const stub = await startStub();
  t.after(() => stub.close());
  const documents = [
    { kind: 'APIMExtensionPolicy', name: 'ext', spec: { targetRef: { name: 'tollgate' } } },
    { kind: 'SanitizeUserPrompt', name: 'guard', spec: { filters: { piAndJailbreak: { action: 'off' }, sensitiveData: { action: 'off' }, secrets: { action: 'off' }, maliciousUri: { action: 'off' }, denyList: { action: 'block', patterns: ['(x+x+)+y'] } } } },
    { kind: 'ApimTemplate', name: 'edge', spec: { templates: [{ policies: [{ kind: 'SanitizeUserPrompt', name: 'guard' }] }] } },
  ];
  const gw = await startGateway({
    configPaths: [],
    manifests: [...poolAndModel([stub.url]), ...documents.map((d) => manifestOf(d.kind, d.name, d.spec, 'test'))],
    ...LOOPBACK,
    logger: silentLogger,
  });
  try {
    const chat = async (content: string) => {
      const r = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content }] }) });
      await r.arrayBuffer();
      return r.status;
    };
    // 40 x's and no y: about 2^40 steps for V8's backtracking, one pass for RE2.
    assert.equal(await chat(`${'x'.repeat(40)} is a long run`), 200);
    assert.equal(await chat(`a run of ${'x'.repeat(5000)}`), 200);
    assert.equal(await chat('then xxy appears'), 400);
  } finally {
    await gw.close();
  }
});
