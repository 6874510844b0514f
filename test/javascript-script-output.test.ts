// JavaScript policies through a real gateway: whatever a script hands back that the gateway cannot use (a response
// body it deleted, an output forged by replacing JSON.stringify, a request body nested deeper than a client's may be)
// reaches the client as the documented 500 steps.javascript.ScriptExecutionFailed, never as an internal_error
// carrying Node's message, and nothing is sent to the model server for a refused request.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { silentLogger } from '../src/lib/logger.js';
import { manifest, poolAndModel } from './helpers/manifests.js';
import { startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

/** Replaces the sandbox's JSON.stringify for the prelude's last call: the output is a 100-byte array-like body. */
const AMPLIFY = `var real = JSON.stringify;
  JSON.stringify = function (v) {
    if (!v || !v.variables) return real.apply(null, arguments);
    JSON.stringify = real;
    return '{"variables":{},"requestHeaders":{},"requestBody":"null","responseHeaders":null,"responseBody":{"length":100000000}}';
  };`;

/** Each script runs on requests whose x-case header names it. */
const SCRIPTS: Record<string, Record<string, unknown>> = {
  'deleted-body': { flow: 'response', source: 'delete response.body;' },
  amplify: { flow: 'response', source: AMPLIFY, timeLimit: '50ms', memoryLimitMb: 1 },
  'deep-body': { source: 'var o = {}; request.body.metadata = o; for (var i = 0; i < 600; i++) o = o.a = {};', memoryLimitMb: 32 },
  'unsendable-header': { source: "request.headers['x-user'] = 'a\\r\\nx-injected: 1';" },
};

let stub: Stub;
let gw: Gateway;

before(async () => {
  stub = await startStub();
  const manifests = [
    manifest('APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: false, targetRef: { name: 'tollgate', kind: 'Gateway' } }),
    ...poolAndModel([stub.url]),
    ...Object.entries(SCRIPTS).map(([name, spec]) => manifest('JavaScript', name, { timeLimit: '5s', ...spec })),
    manifest('ApimTemplate', 'scripts', {
      templates: Object.keys(SCRIPTS).map((name) => ({ condition: `request.headers['x-case'] == '${name}'`, policies: [{ kind: 'JavaScript', name }] })),
    }),
  ];
  gw = await startGateway({ configPaths: [], manifests, ...LOOPBACK, logger: silentLogger });
});

after(async () => {
  await gw?.close();
  await stub?.close();
});

async function chat(scriptCase: string) {
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-case': scriptCase },
    body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
  });
  const text = await res.text();
  assert.ok(text.length < 10_000, `a ${text.length}-character answer`);
  return { status: res.status, body: JSON.parse(text) as { error: { code: string; message: string } } };
}

for (const [name, message] of [
  ['deleted-body', /^Execution of deleted-body failed: response\.body must stay JSON or text$/],
  ['amplify', /^Execution of amplify failed: response\.body must stay JSON or text$/],
] as const) {
  test(`a response script's unusable output (${name}) → 500 ScriptExecutionFailed, not internal_error`, async () => {
    const r = await chat(name);
    assert.equal(r.status, 500);
    assert.equal(r.body.error.code, 'steps.javascript.ScriptExecutionFailed', JSON.stringify(r.body));
    assert.match(r.body.error.message, message);
  });
}

test('a request body a script nests deeper than 512 levels → 500 ScriptExecutionFailed, nothing sent upstream', async () => {
  const before = stub.requests.length;
  const r = await chat('deep-body');
  assert.equal(r.status, 500);
  assert.equal(r.body.error.code, 'steps.javascript.ScriptExecutionFailed', JSON.stringify(r.body));
  assert.match(r.body.error.message, /request\.body nests arrays and objects more than 512 levels deep/);
  assert.equal(stub.requests.length, before);
});

test('a request header a script sets that cannot be sent (a line break) → 500 ScriptExecutionFailed, not the client\'s 400; nothing sent upstream', async () => {
  const before = stub.requests.length;
  const r = await chat('unsendable-header');
  assert.equal(r.status, 500);
  assert.equal(r.body.error.code, 'steps.javascript.ScriptExecutionFailed', JSON.stringify(r.body));
  assert.match(r.body.error.message, /^Execution of unsendable-header failed: request\.headers\['x-user'\] cannot be sent/);
  assert.equal(stub.requests.length, before);
});
