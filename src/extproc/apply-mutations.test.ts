import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newContext } from '../gateway/data-plane.js';
import { GatewayError } from '../gateway/errors.js';
import { commonOf, mutateBody, mutateRequest, mutateResponse, replaceRequestBody } from './apply-mutations.js';
import { STREAM_CLOSED, type ExtprocCallError } from './client.js';
import { ExtensionResponse } from './extension-response.js';

const opt = (key: string, value: string, extra: object = {}) => ({ header: { key, raw_value: Buffer.from(value) }, ...extra });

test('request header mutations reach later stages and the upstream request; pseudo, host and framing headers stay', () => {
  const ctx = newContext('POST', '/v1/chat/completions', { 'x-a': '1', 'x-b': 'keep', host: 'gw' }, undefined);
  const original = ctx.headers;
  mutateRequest(ctx, {
    set_headers: [opt('X-A', '2'), opt('x-new', 'n'), opt('x-b', 'other', { append_action: 1 }), opt(':path', '/evil'), opt('host', 'evil'), opt('content-length', '1'), opt('x-app', 'v', { append: { value: true } })],
    remove_headers: ['x-gone', 'Host'],
  });
  assert.equal(ctx.headers['x-a'], '2');
  assert.equal(ctx.headers['x-b'], 'keep', 'ADD_IF_ABSENT on a present header does nothing');
  assert.equal(ctx.headers.host, 'gw');
  assert.equal(original['x-a'], '1', 'the client\'s headers object is not changed in place');
  assert.deepEqual(ctx.upstreamHeaders, { 'x-a': '2', 'x-new': 'n', 'x-app': 'v', 'x-gone': null });
});

test('response header mutations apply to the head about to be sent', () => {
  const out = { 'content-type': 'application/json', 'x-drop': '1' };
  mutateResponse(out, { set_headers: [opt('x-added', 'yes')], remove_headers: ['x-drop'] });
  assert.deepEqual(out, { 'content-type': 'application/json', 'x-added': 'yes' });
});

test('body mutations: replace, clear, or leave', () => {
  const body = Buffer.from('abc');
  assert.equal(mutateBody(body, undefined), body);
  assert.equal(mutateBody(body, { body: Buffer.from('x') }).toString(), 'x');
  assert.equal(mutateBody(body, { clear_body: true }).length, 0);
});

test('a replaced request body is parsed again, so the model it names is the one routed', () => {
  const ctx = newContext('POST', '/v1/chat/completions', {}, undefined);
  ctx.operation = 'chat.completions';
  replaceRequestBody(ctx, Buffer.from(JSON.stringify({ model: 'other', messages: [{ role: 'user', content: 'x' }], stream: true })));
  assert.equal(ctx.model, 'other');
  assert.equal(ctx.stream, true);
  assert.throws(() => replaceRequestBody(ctx, Buffer.from('{')), GatewayError);
});

test('commonOf: an immediate response is the extension\'s verdict; a mismatched answer is invalid', () => {
  assert.throws(
    () => commonOf({ immediate_response: { status: { code: 403 }, headers: { set_headers: [opt('content-type', 'text/plain')] }, body: Buffer.from('no'), details: 'denied' } }, 'request_headers'),
    (e: ExtensionResponse) => e instanceof ExtensionResponse && e.toResponse().body === 'no' && e.toResponse().headers['content-type'] === 'text/plain' && e.status === 403,
  );
  assert.throws(() => commonOf({ immediate_response: { status: { code: 403 } } }, 'request_headers'), (e: ExtensionResponse) => e.message === 'answered by an extension');
  assert.throws(() => commonOf({ response: 'request_body', request_body: {} }, 'request_headers'), (e: ExtprocCallError) => e.reason === 'invalid_response');
  assert.deepEqual(commonOf({ response: 'request_headers', request_headers: { response: { clear_route_cache: true } } }, 'request_headers'), { clear_route_cache: true });
});

test('an immediate response\'s details (free text) go into the message; the code, a metric label, is always extension_response', () => {
  for (const details of ['waf.block.rule_1_req_j6xgan', 'policies.ratelimit.QuotaViolation', 'denied']) {
    assert.throws(
      () => commonOf({ immediate_response: { status: { code: 403 }, details } }, 'request_body'),
      (e: ExtensionResponse) => e.code === 'extension_response' && e.message === `answered by an extension: ${details}`,
    );
  }
});

test('commonOf: an immediate response with a status no final HTTP answer has is an invalid answer; headers HTTP cannot carry are left out', () => {
  for (const code of [1, 99, 100, 199, 600, 1000]) {
    assert.throws(() => commonOf({ immediate_response: { status: { code } } }, 'request_headers'), (e: ExtprocCallError) => e.reason === 'invalid_response', String(code));
  }
  const set_headers = [opt('x-why', 'a\r\nset-cookie: evil=1'), opt('bad name', '1'), opt('Transfer-Encoding', 'chunked'), opt('content-length', '9'), opt('connection', 'close'), opt(':status', '200'), opt('x-ok', 'v')];
  assert.throws(
    () => commonOf({ immediate_response: { status: { code: 429 }, headers: { set_headers } } }, 'response_body'),
    (e: ExtensionResponse) => e.status === 429 && JSON.stringify(e.toResponse().headers) === '{"x-ok":"v"}',
  );
});

test('commonOf: once the extension closed the stream cleanly, every answer is an empty one', () => {
  assert.deepEqual(commonOf(STREAM_CLOSED, 'response_headers'), {});
});
