// OASValidation: config errors, a valid request, each way a request fails (path, method, parameters, body), and
// response validation for non-streamed JSON answers.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GatewayError } from '../../../gateway/errors.js';
import { MemoryCounterStore } from '../../../store/counters/memory.js';
import { fakeContext, testDeps, type FakeRequest } from '../../testing.js';
import { OAS_VALIDATION_FAULTS, oasValidation } from './oas-validation.js';

const deps = testDeps(new MemoryCounterStore());

const CHAT_API = `
openapi: 3.0.3
info: {title: chat, version: '1'}
paths:
  /v1/chat/completions:
    parameters:
      - {name: x-tenant, in: header, required: true, schema: {type: string, pattern: '^[a-z]+$'}}
    post:
      parameters:
        - {name: api-version, in: query, schema: {type: integer, minimum: 1}}
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: '#/components/schemas/Chat'}
      responses:
        '200':
          content:
            application/json:
              schema: {type: object, required: [id, choices]}
components:
  schemas:
    Chat:
      type: object
      required: [model, messages]
      properties:
        model: {type: string}
        max_tokens: {type: integer, maximum: 512}
        messages:
          type: array
          minItems: 1
          items:
            type: object
            required: [role, content]
            properties:
              role: {enum: [system, user, assistant]}
              content: {type: string}
`;

const make = (spec: Record<string, unknown> = {}) => oasValidation('oas', { openApi: CHAT_API, ...spec }, deps);
const req = (r: FakeRequest = {}) => fakeContext({ ...r, headers: { 'x-tenant': 'acme', ...r.headers } });

function reasonOf(call: () => unknown): string {
  try {
    call();
    return 'ok';
  } catch (err) {
    const e = err as GatewayError;
    assert.equal(e.code, OAS_VALIDATION_FAULTS.failed);
    return `${e.status} ${e.message.replace(/^OASValidation oas failed with reason: /, '')}`;
  }
}

const configErrors: [spec: Record<string, unknown>, message: RegExp][] = [
  [{ openApi: 'swagger: "2.0"\npaths: {}' }, /not an OpenAPI 3 document/],
  [{ openApi: { openapi: '3.0.0' } }, /has no paths/],
  [{ openApi: CHAT_API, source: 'x.yaml' }, /not both/],
  [{ openApi: undefined, source: '/nonexistent/spec.yaml' }, /spec\.source: \/nonexistent\/spec\.yaml: not a regular file the gateway can read$/],
  [{ openApi: "openapi: 3.0.0\npaths:\n  /a:\n    post:\n      requestBody: {$ref: '#/components/requestBodies/Nope'}" }, /does not resolve/],
  // Text is read as manifests are: nesting and alias expansion bounded, one document.
  [{ openApi: `openapi: 3.0.0\npaths: ${'['.repeat(100_000)}` }, /openApi document 0: YAML: nests sequences and mappings more than 512 levels/],
  [{ openApi: `a: &a [x, x, x, x, x, x, x, x, x, x]\n${[...'bcdefghi'].map((k, i) => `${k}: &${k} [${`*${'abcdefghi'[i]}, `.repeat(9)}*${'abcdefghi'[i]}]`).join('\n')}\nopenapi: 3.0.0\npaths: {}` }, /openApi document 0: YAML: .*alias/i],
  [{ openApi: 'openapi: 3.0.0\npaths: {}\n---\nopenapi: 3.0.0\npaths: {}' }, /holds 2 documents/],
];
for (const [spec, message] of configErrors) test(`config: ${JSON.stringify(spec).slice(0, 60)} is refused`, () => assert.throws(() => oasValidation('oas', spec, deps), message));

/** CHAT_API with `schema` for the content of each message (in the Chat schema the body refers to). */
const withContentSchema = (schema: string) => CHAT_API.replace('content: {type: string}', `content: ${schema}`);
// Patterns run against client input on the event loop: one V8 may take exponential time on runs on RE2 instead, and
// one neither engine can run is refused when the policy is built (at configuration load), wherever ajv meets it (a
// body schema behind a $ref, parameters, keys), naming it and where its schema is.
const UNRUNNABLE = '(x+x+)+(?=y)';
const slowPatterns: [where: string, doc: (pattern: string) => string, pointer: string][] = [
  ['a body schema', (p) => withContentSchema(`{type: string, pattern: '${p}'}`), '/paths/~1v1~1chat~1completions/post/requestBody/content/application~1json/schema'],
  ['patternProperties', (p) => withContentSchema(`{type: object, patternProperties: {'${p}': {type: string}}}`), '/paths/~1v1~1chat~1completions/post/requestBody/content/application~1json/schema'],
  ['a parameter', (p) => CHAT_API.replace("pattern: '^[a-z]+$'", () => `pattern: '${p}'`), '/paths/~1v1~1chat~1completions/parameters/0/schema'],
];
for (const [where, doc, pointer] of slowPatterns) {
  test(`config: a pattern with nested quantifiers in ${where} is built (on RE2); one RE2 cannot run is refused, naming it`, () => {
    assert.doesNotThrow(() => oasValidation('oas', { openApi: doc('(x+x+)+y') }, deps));
    const expected = `${pointer}: pattern "${UNRUNNABLE}": the pattern may take exponential time in V8`;
    assert.throws(() => oasValidation('oas', { openApi: doc(UNRUNNABLE) }, deps), (err: Error) => err.message.startsWith(expected) || assert.fail(err.message));
  });
}

test('a header pattern with nested quantifiers is enforced on RE2, in linear time on a long value', () => {
  const policy = oasValidation('oas', { openApi: CHAT_API.replace("pattern: '^[a-z]+$'", () => "pattern: '^(?:[a-z]+-?)+$'") }, deps);
  assert.equal(reasonOf(() => policy.admit!(req({ headers: { 'x-tenant': 'acme-eu-west' } }), {})), 'ok');
  // V8 backtracks exponentially on this one: a run of letters the group can split in 2^n ways, then a digit.
  assert.match(reasonOf(() => policy.admit!(req({ headers: { 'x-tenant': `${'a'.repeat(5000)}1` } }), {})), /x-tenant/);
});

test('a request that follows the document passes; the document may come from a file', () => {
  assert.equal(reasonOf(() => make().admit!(req({ url: '/v1/chat/completions?api-version=2' }), {})), 'ok');
  const dir = mkdtempSync(join(tmpdir(), 'oas-'));
  writeFileSync(join(dir, 'chat.yaml'), CHAT_API);
  assert.equal(reasonOf(() => oasValidation('oas', { source: join(dir, 'chat.yaml') }, deps).admit!(req(), {})), 'ok');
});

describe('a source file is read as manifest files are: a regular file, at most 4 MiB, UTF-8', () => {
  const dir = mkdtempSync(join(tmpdir(), 'oas-source-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('what is not a readable regular file (nothing there, a directory) is said one way, not as Node words it', () => {
    // Before: ENOENT, EISDIR... with the syscall: whether a path of the host exists, to an admin API dry run.
    const unreadable = (source: string) => `spec.source: ${source}: not a regular file the gateway can read`;
    for (const source of [join(dir, 'missing.yaml'), dir]) assert.throws(() => oasValidation('oas', { source }, deps), { message: unreadable(source) });
  });

  test('a file over 4 MiB, or not UTF-8, is refused as a manifest file is', () => {
    const big = join(dir, 'big.yaml');
    writeFileSync(big, `# ${'x'.repeat(5 * 1024 * 1024)}\n${CHAT_API}`);
    assert.throws(() => oasValidation('oas', { source: big }, deps), { message: `spec.source: ${big}: larger than 4194304 bytes, the limit for a manifest file` });
    const latin1 = join(dir, 'latin1.yaml');
    writeFileSync(latin1, Buffer.from(`${CHAT_API}# caf\xe9\n`, 'latin1'));
    assert.throws(() => oasValidation('oas', { source: latin1 }, deps), { message: `spec.source: ${latin1}: not UTF-8 text` });
  });

  test('a FIFO is refused without being opened', { skip: process.platform === 'win32' }, () => {
    const fifo = join(dir, 'pipe.yaml');
    execFileSync('mkfifo', [fifo]);
    // In a child: before, the read waited for a writer that never comes, with the event loop (the gateway) blocked.
    const script = `import(${JSON.stringify(new URL('./oas-validation.ts', import.meta.url).href)}).then((m) => { try { m.oasValidation('oas', { source: ${JSON.stringify(fifo)} }, {}); console.log('read'); } catch (e) { console.log(e.message); } })`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { timeout: 30_000, encoding: 'utf8' });
    assert.equal(r.signal, null, 'the load returned (not killed after 30 s)');
    assert.equal(r.stdout.trim(), `spec.source: ${fifo}: not a regular file the gateway can read`);
  });
});

const failures: [name: string, r: FakeRequest, reason: string][] = [
  ['an unknown path', { url: '/v1/embeddings' }, '400 no API path matches /v1/embeddings'],
  ['a method the path lacks', { method: 'PUT' }, '400 PUT is not allowed on /v1/chat/completions'],
  ['a missing required header', { headers: { 'x-tenant': undefined } }, '400 header parameter "x-tenant" is required'],
  ['a header against its schema', { headers: { 'x-tenant': 'ACME' } }, '400 header parameter "x-tenant" must match pattern "^[a-z]+$"'],
  ['a query parameter against its schema', { url: '/v1/chat/completions?api-version=zero' }, '400 query parameter "api-version" must be integer'],
  ['a body field of the wrong type', { body: { max_tokens: 4096 } }, '400 request body /max_tokens: must be <= 512'],
  ['a bad nested field, by its JSON path', { body: { messages: [{ role: 'robot', content: 'hi' }] } }, '400 request body /messages/0/role: must be equal to one of the allowed values'],
];
for (const [name, r, reason] of failures) test(`${name} → ${reason}`, () => assert.equal(reasonOf(() => make().admit!(req(r), {})), reason));

test('a required body that is missing faults', () => {
  const ctx = req();
  ctx.body = undefined;
  ctx.rawBody = Buffer.alloc(0);
  assert.equal(reasonOf(() => make().admit!(ctx, {})), '400 a request body is required');
});

test('answers are validated only when asked, and only JSON answers with a schema', async () => {
  assert.equal(make().respond, undefined);
  const policy = make({ validateResponses: true });
  assert.equal(policy.respond!(req(), {}, 500), undefined);
  const flow = policy.respond!(req(), {}, 200)!;
  flow.headers!(200, { 'content-type': 'application/json' });
  const good = Buffer.from('{"id":"c","choices":[]}');
  assert.equal(await flow.body!(good, 200), good);
  assert.throws(() => flow.body!(Buffer.from('{"id":"c"}'), 200), (err: GatewayError) => err.status === 502 && /the 200 answer \/: must have required property 'choices'/.test(err.message));
  assert.throws(() => flow.body!(Buffer.from('oops'), 200), (err: GatewayError) => err.status === 502 && /not JSON/.test(err.message));
});

test('an answer that is not JSON by its content-type goes through unchecked, whatever schema its status has', async () => {
  // Before: a text/plain 503 under a `default` JSON schema became a 502 "not JSON", and the client lost the 503.
  const doc = CHAT_API.replace("        '200':", "        default:");
  const policy = oasValidation('oas', { openApi: doc, validateResponses: true }, deps);
  for (const [status, type] of [[503, 'text/plain; charset=utf-8'], [200, 'text/event-stream'], [200, undefined]] as const) {
    const flow = policy.respond!(req(), {}, status)!;
    flow.headers!(status, type === undefined ? {} : { 'content-type': type });
    const answer = Buffer.from('overloaded');
    assert.equal(await flow.body!(answer, status), answer, `${status} ${type}`);
  }
  const flow = policy.respond!(req(), {}, 503)!;
  flow.headers!(503, { 'content-type': 'application/problem+json' });
  assert.throws(() => flow.body!(Buffer.from('{}'), 503), (err: GatewayError) => err.status === 502 && /the 503 answer \/: must have required property 'id'/.test(err.message));
});

const TREE_API = `
openapi: 3.0.3
info: {title: tree, version: '1'}
paths:
  /tree:
    post:
      requestBody: {content: {application/json: {schema: {$ref: '#/components/schemas/Tree'}}}}
      responses: {'200': {content: {application/json: {schema: {$ref: '#/components/schemas/Tree'}}}}}
components:
  schemas:
    Tree: {type: object, properties: {child: {$ref: '#/components/schemas/Tree'}}}
`;
const nested = (depth: number) => Buffer.from(`${'{"child":'.repeat(depth)}{}${'}'.repeat(depth)}`);

test('a body read here (an HTTPRoute path) nested deeper than the gateway takes is a 400, not a stack overflow', async () => {
  const policy = oasValidation('oas', { openApi: TREE_API, validateResponses: true }, deps);
  const ctx = (raw: Buffer) => Object.assign(req({ url: '/tree' }), { body: undefined, rawBody: raw });
  assert.equal(reasonOf(() => policy.admit!(ctx(nested(100)), {})), 'ok');
  // Before: ajv recursed over it until RangeError, a 500 internal_error.
  assert.equal(reasonOf(() => policy.admit!(ctx(nested(200_000)), {})), '400 the request body nests arrays and objects more than 512 levels deep');
  const flow = policy.respond!(req({ url: '/tree' }), {}, 200)!;
  flow.headers!(200, { 'content-type': 'application/json' });
  assert.equal((await flow.body!(nested(100), 200)).length, nested(100).length);
  assert.throws(() => flow.body!(nested(200_000), 200), (err: GatewayError) => err.status === 502 && /the 200 answer nests arrays and objects more than 512 levels deep/.test(err.message));
});
