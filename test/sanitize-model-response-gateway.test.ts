// SanitizeModelResponse on a gateway, where its answer could get out another way: through logprobs, through an SSE
// event too long for the rewriter to read or one the stream ends without its blank line, through tool-call arguments,
// through a cache that stored a stream the classifier never judged; and embeddings, which it has nothing to read in,
// passing whatever their size. A stream it holds text of at [DONE] still ends with [DONE]. An answer in the other form
// than asked (JSON to a stream request, a stream to one that did not ask) is read all the same.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { MAX_HELD_EVENT } from '../src/gateway/sse-rewriter.js';
import type { Manifest } from '../src/config/manifest.js';
import { silentLogger } from '../src/lib/logger.js';
import { startClassifierStub, type ClassifierStub } from '../src/policy/sanitize/testing.js';
import { call, codeOf, createApp, untilKeyKnown, type Answer, type IssuedApp } from './helpers/apim-admin.js';
import { manifest, settings } from './helpers/manifests.js';
import { json, startStub, type Stub, type StubRequest } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const SECRET = 'AKIAIOSFODNN7EXAMPLQ';
const PIECES = ['The key is ', 'AKIAIOSF', 'ODNN7EXAMPLQ', ' ok.'];
const BLOCKED = 'steps.sanitize.ModelResponseBlocked';

function manifests(upstream: string, classifierUrl: string): Manifest[] {
  const redact = { filters: { secrets: { action: 'redact' } } };
  const bigEntries = { scope: 'app', maxEntryBytes: 16 * 1024 * 1024 };
  /** Each product runs one template: these policies, in this order. */
  const products: Record<string, [kind: string, spec: unknown][]> = {
    redacting: [['SanitizeModelResponse', redact]],
    blocking: [['SanitizeModelResponse', { filters: { secrets: { action: 'block' } } }]],
    'redact-then-cache': [
      ['SanitizeModelResponse', redact],
      ['ResponseCache', bigEntries],
    ],
    'cache-only': [['ResponseCache', bigEntries]],
    'cache-then-classifier': [
      ['ResponseCache', { scope: 'app' }],
      ['SanitizeModelResponse', { classifier: { url: classifierUrl, threshold: 0.8, failOpen: false } }],
    ],
  };
  return [
    manifest('APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: true, targetRef: { name: 'tollgate' } }),
    // Below the embeddings answer's size: a flow that held it whole failed it.
    settings({ server: { maxBodyBytes: 64 * 1024 } }),
    ...Object.entries(products).flatMap(([name, policies]) => [
      manifest('APIProduct', name, { displayName: name, templateRefs: [{ name }] }),
      manifest('APIOperationSet', `${name}-ops`, { apiProductRefs: [{ name }] }),
      manifest('ApimTemplate', name, { templates: [{ policies: policies.map(([kind], i) => ({ kind, name: `${name}-${i}` })) }] }),
      ...policies.map(([kind, spec], i) => manifest(kind, `${name}-${i}`, spec)),
    ]),
    manifest('InferencePool', 'stub', { endpoints: [upstream] }),
    manifest('InferenceModel', 'm', { modelName: 'm', poolRef: { name: 'stub' } }),
  ];
}

const head = { id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm' };
const event = (choice: Record<string, unknown>) => `data: ${JSON.stringify({ ...head, choices: [{ index: 0, logprobs: null, finish_reason: null, ...choice }] })}\n\n`;
const logprob = (token: string) => ({ token, logprob: -0.1, bytes: [...Buffer.from(token)], top_logprobs: [{ token, logprob: -0.1, bytes: [...Buffer.from(token)] }] });

/** A tool call's arguments with the secret in them, and as the client must get them. */
const TOOL_ARGS = JSON.stringify({ command: `aws configure set aws_access_key_id ${SECRET}` });
const TOOL_ARGS_REDACTED = { command: 'aws configure set aws_access_key_id [REDACTED:awsAccessKey]' };

/**
 * What the model server says: the secret in pieces with their logprobs (asked for with `logprobs`), an event longer
 * than the gateway reads (a message saying HUGE), the secret in a tool call's arguments (TOOL), a stream whose last
 * event has no blank line (NO-BLANK), whose choice never finishes (NO-FINISH) or that just stops, with neither
 * finish_reason nor [DONE] (NO-END), an answer in the other form than asked (OTHER-FORM), an answer to be classified,
 * or embeddings.
 */
function upstream(r: StubRequest): void {
  const body = r.body as { stream?: boolean; logprobs?: boolean; input?: unknown; messages?: { content: string }[] };
  if (body.input !== undefined) {
    return json(r.res, 200, { object: 'list', data: Array.from({ length: 80 }, (_, index) => ({ object: 'embedding', index, embedding: Array(256).fill(0.125) })), model: 'm' });
  }
  const prompt = body.messages?.[0]?.content ?? '';
  // A server that ignores `stream`, either way.
  const stream = prompt === 'OTHER-FORM' ? !body.stream : body.stream;
  if (prompt === 'TOOL' && !stream) {
    const call = { id: 'call_1', type: 'function', function: { name: 'shell', arguments: TOOL_ARGS } };
    return json(r.res, 200, { id: 'c1', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: [call] }, finish_reason: 'tool_calls' }] });
  }
  if (!stream) {
    const content = prompt === 'HUGE' ? 'short' : PIECES.join('');
    const logprobs = body.logprobs ? { content: PIECES.map(logprob) } : null;
    return json(r.res, 200, { id: 'c1', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content }, logprobs, finish_reason: 'stop' }] });
  }
  r.res.writeHead(200, { 'content-type': 'text/event-stream' });
  r.res.write(event({ delta: { role: 'assistant', content: '' } }));
  if (prompt === 'NO-BLANK') {
    r.res.write(event({ delta: { content: 'Hello. ' } }));
    return void r.res.end(event({ delta: { content: `Here it is: ${SECRET}` }, finish_reason: 'stop' }).slice(0, -1));
  }
  if (prompt === 'NO-END') {
    for (const p of PIECES) r.res.write(event({ delta: { content: p } }));
    return void r.res.end();
  }
  if (prompt === 'NO-FINISH') {
    r.res.write(event({ delta: { content: 'hello there' } }));
    return void r.res.end('data: [DONE]\n\n');
  }
  if (prompt === 'TOOL') {
    r.res.write(event({ delta: { tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'shell', arguments: '' } }] } }));
    for (let i = 0; i < TOOL_ARGS.length; i += 7) r.res.write(event({ delta: { tool_calls: [{ index: 0, function: { arguments: TOOL_ARGS.slice(i, i + 7) } }] } }));
    r.res.write(event({ delta: {}, finish_reason: 'tool_calls' }));
    return void r.res.end('data: [DONE]\n\n');
  }
  if (prompt === 'HUGE') r.res.write(event({ delta: { content: `key ${SECRET} ${'w'.repeat(MAX_HELD_EVENT + 512 * 1024)}` } }));
  else for (const p of PIECES) r.res.write(event({ delta: { content: p }, logprobs: body.logprobs ? { content: [logprob(p)] } : null }));
  r.res.write(event({ delta: { content: ' end' }, finish_reason: 'stop' }));
  r.res.end('data: [DONE]\n\n');
}

let stub: Stub;
let classifier: ClassifierStub;
let gw: Gateway;
const apps: Record<string, IssuedApp> = {};

before(async () => {
  stub = await startStub(upstream);
  classifier = await startClassifierStub();
  classifier.answer = 0.99;
  gw = await startGateway({ configPaths: [], manifests: manifests(stub.url, classifier.url), ...LOOPBACK, logger: silentLogger });
  for (const product of ['redacting', 'blocking', 'redact-then-cache', 'cache-only', 'cache-then-classifier']) apps[product] = await createApp(gw.adminUrl, [product], product);
  for (const a of Object.values(apps)) await untilKeyKnown(gw.url, a.key);
});

after(async () => {
  await gw?.close();
  await classifier?.close();
  await stub?.close();
});

function chat(product: string, body: Record<string, unknown>): Promise<Answer> {
  return call(gw.url, 'POST', '/v1/chat/completions', { model: 'm', temperature: 0, messages: [{ role: 'user', content: 'the key?' }], ...body }, { 'x-api-key': apps[product].key });
}

const raw = (a: Answer) => (typeof a.body === 'string' ? a.body : JSON.stringify(a.body));

test('logprobs never carry what the content had redacted or blocked, streamed or whole', async () => {
  // Before: the content said [REDACTED:awsAccessKey] and the logprobs spelled the key out; with block, a stream sent
  // the logprobs of the key's first piece ahead of the error event.
  for (const product of ['redacting', 'blocking']) {
    for (const stream of [false, true]) {
      const r = await chat(product, { stream, logprobs: true, top_logprobs: 1 });
      const text = raw(r);
      assert.ok(!text.includes('AKIAIOSF') && !text.includes('ODNN7EXAMPLQ'), `${product}, stream ${stream}: ${text}`);
      assert.ok(!text.includes('"logprob"'), `${product}, stream ${stream}: no logprobs at all`);
      if (product === 'blocking') assert.ok(stream ? text.includes(BLOCKED) : codeOf(r) === BLOCKED);
      else assert.ok(text.includes('[REDACTED:awsAccessKey]'));
    }
  }
});

/** The `data:` payloads of a streamed answer, parsed (`[DONE]` as it is). */
const payloads = (a: Answer) =>
  raw(a)
    .split('\n\n')
    .filter((e) => e.startsWith('data: '))
    .map((e) => (e === 'data: [DONE]' ? '[DONE]' : JSON.parse(e.slice(6))));

test('tool-call arguments are redacted, whole and streamed', async () => {
  // Before: only the answer's text was read; the key went to the client in the arguments it acts on.
  const whole = await chat('redacting', { messages: [{ role: 'user', content: 'TOOL' }] });
  assert.equal(whole.status, 200);
  assert.deepEqual(JSON.parse(whole.body.choices[0].message.tool_calls[0].function.arguments), TOOL_ARGS_REDACTED);
  const streamed = await chat('redacting', { stream: true, messages: [{ role: 'user', content: 'TOOL' }] });
  assert.ok(!raw(streamed).includes('IOSFODNN'), raw(streamed));
  const args = payloads(streamed)
    .flatMap((p) => (p === '[DONE]' ? [] : p.choices.flatMap((c: { delta: { tool_calls?: { function?: { arguments?: string } }[] } }) => c.delta.tool_calls ?? [])))
    .map((t: { function?: { arguments?: string } }) => t.function?.arguments ?? '')
    .join('');
  assert.deepEqual(JSON.parse(args), TOOL_ARGS_REDACTED);
});

test('how a stream ends does not get it past the sanitizer: a last event without its blank line, a choice never finished', async () => {
  // Before: the unterminated last event went out unread, key and all, and the "Hello. " held before it never did.
  const noBlank = await chat('redacting', { stream: true, messages: [{ role: 'user', content: 'NO-BLANK' }] });
  assert.ok(!raw(noBlank).includes(SECRET), raw(noBlank));
  const text = payloads(noBlank)
    .filter((p) => p !== '[DONE]')
    .map((p) => p.choices[0].delta.content ?? '')
    .join('');
  assert.equal(text, 'Hello. Here it is: [REDACTED:awsAccessKey]');
  // Before: the held text went out in place of [DONE], and a client waiting for [DONE] waited for the connection to close.
  const noFinish = await chat('redacting', { stream: true, messages: [{ role: 'user', content: 'NO-FINISH' }] });
  assert.equal(payloads(noFinish).at(-1), '[DONE]');
  assert.match(raw(noFinish), /hello there/);
  // Before: "The key is " and nothing more: the rest, held back, was dropped when the stream just stopped.
  const noEnd = await chat('redacting', { stream: true, messages: [{ role: 'user', content: 'NO-END' }] });
  const ended = payloads(noEnd)
    .map((p) => p.choices[0].delta.content ?? '')
    .join('');
  assert.equal(ended, 'The key is [REDACTED:awsAccessKey] ok.');
});

test('an answer in the other form than asked is read all the same: JSON to a stream request, a stream to one that did not ask', async () => {
  for (const [product, stream] of [['redacting', true], ['redacting', false], ['blocking', true], ['blocking', false]] as const) {
    // Before: the flow for the form asked for matched no answer of the other, and the key reached the client.
    const r = await chat(product, { stream, messages: [{ role: 'user', content: 'OTHER-FORM' }] });
    assert.ok(!raw(r).includes('AKIAIOSF') && !raw(r).includes('ODNN7EXAMPLQ'), `${product}, stream ${stream}: ${raw(r)}`);
    if (product === 'blocking') assert.ok(stream ? codeOf(r) === BLOCKED : raw(r).includes(BLOCKED), `${product}, stream ${stream}: ${raw(r)}`);
    else assert.match(raw(r), /The key is \[REDACTED:awsAccessKey\]/);
  }
});

test('an event too long to read ends a sanitized stream with its error event, and no cache keeps the answer', async () => {
  // Before: the 4 MiB event went out unread, key and all, and the cache stored the answer without it, as complete.
  const streamed = await chat('redact-then-cache', { stream: true, messages: [{ role: 'user', content: 'HUGE' }] });
  assert.equal(streamed.status, 200);
  assert.ok(!raw(streamed).includes(SECRET), 'the key never went out');
  assert.match(raw(streamed), /too long to scan/);
  const again = await chat('redact-then-cache', { messages: [{ role: 'user', content: 'HUGE' }] });
  assert.equal(again.headers['x-cache'], 'MISS');
  assert.equal(again.body.choices[0].message.content, 'short');
});

test('a cache alone passes the long event on but does not store the answer it could not read whole', async () => {
  const streamed = await chat('cache-only', { stream: true, messages: [{ role: 'user', content: 'HUGE' }] });
  assert.ok(raw(streamed).includes('w'.repeat(1000)), 'the client gets the whole event');
  const again = await chat('cache-only', { messages: [{ role: 'user', content: 'HUGE' }] });
  assert.equal(again.headers['x-cache'], 'MISS', 'before: a HIT replaying the answer without its longest part');
});

test('a stream the classifier never saw is not stored for a cache listed before it to replay unjudged', async () => {
  const judged = await chat('cache-then-classifier', { messages: [{ role: 'user', content: 'question one' }] });
  assert.equal(codeOf(judged), BLOCKED);
  const streamed = await chat('cache-then-classifier', { stream: true, messages: [{ role: 'user', content: 'question two' }] });
  assert.equal(streamed.status, 200, 'streams are not classified (documented)');
  const asked = classifier.texts.length;
  // Before: 200 HIT with the answer the classifier refuses, and the classifier never asked.
  const whole = await chat('cache-then-classifier', { messages: [{ role: 'user', content: 'question two' }] });
  assert.equal(whole.headers['x-cache'], 'MISS');
  assert.equal(codeOf(whole), BLOCKED);
  assert.equal(classifier.texts.length, asked + 1);
});

test('embeddings pass a sanitizer whatever their size: it has no text to read, so it holds nothing', async () => {
  // Before: 502 "the answer is larger than a response policy can hold" past server.maxBodyBytes.
  const r = await call(gw.url, 'POST', '/v1/embeddings', { model: 'm', input: ['a', 'b'] }, { 'x-api-key': apps.redacting.key });
  assert.equal(r.status, 200, raw(r).slice(0, 200));
  assert.equal(r.body.data.length, 80);
});
