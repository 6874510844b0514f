import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { z } from 'zod';
import { GatewayError } from './errors.js';
import { parseOpenAIBody, TEXT_OR_TOKENS } from './openai-request.js';
import { MAX_JSON_DEPTH } from '../lib/json-depth.js';

function nested(depth: number, inner = ''): string {
  return '['.repeat(depth) + inner + ']'.repeat(depth);
}

function refusal(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof GatewayError, String(err));
    return err;
  }
  assert.fail('the body was accepted');
}

test('a body nested deeper than the limit is a 400, before any stage recurses over it', () => {
  // 100k levels: JSON.parse takes it, JSON.stringify of it (the picker's prompt of a Responses input) overflows the stack.
  const deep = Buffer.from(`{"model":"m","input":${nested(100_000)}}`);
  const err = refusal(() => parseOpenAIBody(deep, 'responses'));
  assert.deepEqual([err.status, err.code], [400, 'invalid_request']);
  assert.match(err.message, /512 levels/);
  // Anywhere in the body, not only in the fields tollgate reads.
  const extra = Buffer.from(`{"model":"m","messages":[{"role":"user","content":"x"}],"tools":${nested(MAX_JSON_DEPTH)}}`);
  assert.equal(refusal(() => parseOpenAIBody(extra, 'chat.completions')).code, 'invalid_request');
});

test('nesting up to the limit passes, and brackets inside strings do not count', () => {
  // The body object is level 1, so the array can take every level but that one.
  const atLimit = Buffer.from(`{"model":"m","input":${nested(MAX_JSON_DEPTH - 1)}}`);
  assert.equal(parseOpenAIBody(atLimit, 'responses').model, 'm');
  const brackets = JSON.stringify({ model: 'm', input: `${'['.repeat(5000)}\\"{{{`, messages: [{ role: 'user', content: '"[[[\\' }] });
  assert.equal(parseOpenAIBody(Buffer.from(brackets), 'responses').model, 'm');
  // Many brackets but shallow (a long conversation, a large tool list): scanned, and let through.
  const wide = JSON.stringify({ model: 'm', messages: Array.from({ length: 2000 }, () => ({ role: 'user', content: [{ type: 'text', text: 'x' }] })) });
  assert.equal(parseOpenAIBody(Buffer.from(wide), 'chat.completions').model, 'm');
});

test('a content part may leave out type in vLLM\'s short media forms alone; a bare string among the parts is refused, saying what content takes', () => {
  const chat = (content: unknown) => Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content }] }));
  const parts = [{ type: 'text', text: 'what is this?' }, { image_url: 'https://i.example/1.png' }, { audio_url: { url: 'https://a.example/1.wav' } }, { input_audio: { data: 'AAAA', format: 'wav' } }];
  assert.deepEqual(parseOpenAIBody(chat(parts), 'chat.completions').messages![0].content, parts);
  // vLLM refuses a part with neither ("Missing 'type' field in multimodal part").
  const typeless = refusal(() => parseOpenAIBody(chat([{ text: 'what is this?' }]), 'chat.completions'));
  assert.equal(typeless.param, 'messages[0].content[0]');
  assert.match(typeless.message, /needs a type, unless it is one of vLLM's short media forms \(image_url, audio_url/);
  for (const content of [['what is this?'], [{ type: 5 }], [{ type: 'text', text: 5 }], [null]]) {
    const err = refusal(() => parseOpenAIBody(chat(content), 'chat.completions'));
    assert.equal(err.param, 'messages[0].content', JSON.stringify(content));
    assert.match(err.message, /must be a string, null or an array of content parts/, JSON.stringify(content));
  }
});

test('optional fields sent as null are taken as absent (as OpenAI and vLLM do; the Python SDK sends None so), wrong types still refused', () => {
  const body = (fields: object) => Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], ...fields }));
  parseOpenAIBody(body({ stream: null, max_tokens: null, max_completion_tokens: null, stream_options: { include_usage: null } }), 'chat.completions');
  parseOpenAIBody(body({ stream_options: null }), 'chat.completions');
  parseOpenAIBody(Buffer.from(JSON.stringify({ model: 'm', input: 'hi', max_output_tokens: null, stream: null })), 'responses');
  assert.match(refusal(() => parseOpenAIBody(body({ stream: 'yes' }), 'chat.completions')).message, /stream/);
  assert.match(refusal(() => parseOpenAIBody(body({ max_tokens: -1 }), 'chat.completions')).message, /max_tokens/);
});

test('n and best_of, which token quotas multiply the output cap by, must be positive integers', () => {
  const chat = (fields: object) => Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], ...fields }));
  const completions = (fields: object) => Buffer.from(JSON.stringify({ model: 'm', prompt: 'hi', ...fields }));
  parseOpenAIBody(chat({ n: 2 }), 'chat.completions');
  parseOpenAIBody(completions({ n: null, best_of: 3 }), 'completions');
  // "8" counted as one choice while a server coercing it made eight.
  assert.match(refusal(() => parseOpenAIBody(chat({ n: '8' }), 'chat.completions')).message, /\bn\b/);
  assert.match(refusal(() => parseOpenAIBody(chat({ n: 0 }), 'chat.completions')).message, /\bn\b/);
  assert.match(refusal(() => parseOpenAIBody(completions({ best_of: 1.5 }), 'completions')).message, /best_of/);
});

test('requests vLLM takes without a prompt tollgate reads pass: prompt_embeds alone, prompt null, embeddings of messages', () => {
  const parse = (body: unknown, op: Parameters<typeof parseOpenAIBody>[1]) => parseOpenAIBody(Buffer.from(JSON.stringify(body)), op);
  assert.equal(parse({ model: 'm', prompt_embeds: 'AAAA' }, 'completions').prompt, undefined);
  assert.equal(parse({ model: 'm', prompt: null }, 'completions').prompt, null);
  assert.equal(parse({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }, 'embeddings').input, undefined);
  // What tollgate reads is still checked.
  assert.throws(() => parse({ model: 'm', prompt: 5 }, 'completions'), /prompt/);
  assert.throws(() => parse({ model: 'm', messages: 'hi' }, 'embeddings'), /messages/);
});

test('messages on a completions or responses request, which tollgate reads wherever they are, are checked there too', () => {
  const parse = (body: unknown, op: Parameters<typeof parseOpenAIBody>[1]) => parseOpenAIBody(Buffer.from(JSON.stringify(body)), op);
  for (const op of ['completions', 'responses'] as const) {
    // Read as chat messages by the picker and the token estimate: `[1]`, `[{}]` and `[null]` were a 500.
    for (const messages of [[1], [{}], [null], 'hi']) {
      const err = refusal(() => parse({ model: 'm', prompt: 'x', input: 'x', messages }, op));
      assert.equal(err.status, 400);
      assert.match(err.message, /messages/, `${op} ${JSON.stringify(messages)}`);
    }
    // Well-formed ones, and null, are passed on for the model server (which ignores them).
    assert.deepEqual(parse({ model: 'm', input: 'x', messages: [{ role: 'user', content: 'hi' }] }, op).messages, [{ role: 'user', content: 'hi' }]);
    assert.equal(parse({ model: 'm', input: 'x', messages: null }, op).messages, null);
  }
});

test('a body that starts with a UTF-8 byte order mark is read as vLLM reads it', () => {
  const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }))]);
  assert.equal(parseOpenAIBody(body, 'chat.completions').model, 'm');
});

test('a prompt or input takes text, texts, token ids or lists of token ids, and nothing else', () => {
  const accepted = ['a', [], ['a', 'b'], [1, 2], [1.5, -3], [[1], [2]], [[]], [[1], []], [[1.5]]];
  const refused = [5, {}, true, ['a', 1], [1, 'a'], [[1], 'a'], [1, [1]], [['a']], [[1, 'a']], [true], [null], [{}]];
  for (const [operation, field] of [['completions', 'prompt'], ['embeddings', 'input']] as const) {
    const body = (v: unknown) => Buffer.from(JSON.stringify({ model: 'm', [field]: v }));
    for (const v of accepted) assert.deepEqual(parseOpenAIBody(body(v), operation)[field], v, `${field}: ${JSON.stringify(v)}`);
    for (const v of refused) {
      const err = refusal(() => parseOpenAIBody(body(v), operation));
      assert.deepEqual([err.status, err.code, err.param], [400, 'invalid_request', field], JSON.stringify(v));
      assert.match(err.message, new RegExp(`^Invalid request: ${field}: `));
    }
  }
});

/** Every issue a failed check made, those nested in a union's tries included. */
function issueCount(issues: readonly z.core.$ZodIssue[]): number {
  return issues.reduce((n, issue) => n + 1 + (issue.code === 'invalid_union' ? issue.errors.reduce((m, tried) => m + issueCount(tried), 0) : 0), 0);
}

test('a token-id array is read once, and a wrong element in a million makes one issue, not one per element', () => {
  // A union of z.array schemas tried the array of strings first: an issue per token id (1M of them, ~1.5 s of CPU and
  // GC for a 5.8 MB body), then read the array again as numbers, all before the API key was looked at.
  const ids = Array.from({ length: 10_000 }, (_, i) => i);
  let reads = 0;
  const counted = new Proxy(ids, {
    get(target, key, receiver) {
      if (typeof key === 'string' && /^\d+$/.test(key)) reads++;
      return Reflect.get(target, key, receiver) as unknown;
    },
  });
  assert.equal(TEXT_OR_TOKENS.safeParse(counted).success, true);
  assert.ok(reads <= ids.length + 1, `${reads} element reads for ${ids.length} elements`);

  const million = Array.from<unknown, unknown>({ length: 1_000_000 }, (_, i) => i % 50_000);
  million[999_999] = 'x';
  const result = TEXT_OR_TOKENS.safeParse(million);
  assert.equal(result.success, false);
  assert.equal(issueCount(result.error!.issues), 1);
  // Through the body parser too: accepted whole, and refused naming the field.
  million[999_999] = 7;
  assert.equal((parseOpenAIBody(Buffer.from(JSON.stringify({ model: 'm', input: million })), 'embeddings').input as number[]).length, 1_000_000);
  million[0] = 'x';
  assert.equal(refusal(() => parseOpenAIBody(Buffer.from(JSON.stringify({ model: 'm', prompt: million })), 'completions')).param, 'prompt');
});

test('a number beyond the range of a double (1e400) is refused naming where it is, not sent on as null', () => {
  // JSON.parse reads it as Infinity, which JSON.stringify writes as null: temperature null is the server's default,
  // seed null a random one, whenever tollgate serializes the body again (a model rewrite, a policy).
  const cases: [string, string][] = [
    ['"temperature":1e400', 'temperature'],
    ['"seed":-1e400', 'seed'],
    ['"logit_bias":{"50256":1e999}', 'logit_bias.50256'],
    ['"x":[1,[2,{"y":1e309}]]', 'x[1][1].y'],
    [`"z":1${'0'.repeat(400)}`, 'z'],
    ['"max_tokens":1e400', 'max_tokens'],
  ];
  for (const [field, path] of cases) {
    const err = refusal(() => parseOpenAIBody(Buffer.from(`{"model":"m","prompt":"hi",${field}}`), 'completions'));
    assert.deepEqual([err.status, err.code, err.param], [400, 'invalid_request', path], field);
    assert.match(err.message, /out of range/);
  }
  const err = refusal(() => parseOpenAIBody(Buffer.from('{"model":"m","prompt":[1,2,1e400]}'), 'completions'));
  assert.equal(err.param, 'prompt[2]');
  // The largest doubles and numbers that round to zero are numbers like any other.
  const body = parseOpenAIBody(Buffer.from('{"model":"m","prompt":"hi","a":1.7e308,"b":-1e308,"c":1e-400}'), 'completions');
  assert.deepEqual([body.a, body.b, body.c], [1.7e308, -1e308, 0]);
});
