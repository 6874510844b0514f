// Schemas as the document's OpenAPI version means them (3.0: draft 4's bounds, nullable, readOnly/writeOnly; 3.1:
// JSON Schema 2020-12), at a cost that grows with the body alone: the first error only, uniqueItems in linear time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ValidateFunction } from 'ajv';
import type { GatewayError } from '../../../gateway/errors.js';
import { MemoryCounterStore } from '../../../store/counters/memory.js';
import { fakeContext, testDeps } from '../../testing.js';
import { compileDocument } from './oas-document.js';
import { oasValidation } from './oas-validation.js';

const deps = testDeps(new MemoryCounterStore());

/** A document whose POST /x takes `schema` as its body and answers 200 with `answer`. */
const docWith = (version: string, schema: unknown, answer: unknown = schema, components: Record<string, unknown> = {}) => ({
  openapi: version,
  info: { title: 't', version: '1' },
  components: { schemas: components },
  paths: { '/x': { post: { requestBody: { content: { 'application/json': { schema } } }, responses: { 200: { content: { 'application/json': { schema: answer } } } } } } },
});

/** The request body and answer validators of docWith(...). */
function validators(...args: Parameters<typeof docWith>): { request: ValidateFunction; answer: ValidateFunction } {
  const op = compileDocument(docWith(...args))[0].operations.get('POST')!;
  return { request: op.body!, answer: op.responses.get('200')! };
}

/** The policy's reason for refusing `body` on POST /x, or 'ok'. */
function reasonOf(doc: Record<string, unknown>, body: unknown): string {
  const ctx = fakeContext({ url: '/x' });
  ctx.body = body as typeof ctx.body;
  try {
    oasValidation('oas', { openApi: doc }, deps).admit!(ctx, {});
    return 'ok';
  } catch (err) {
    return (err as GatewayError).message.replace(/^OASValidation oas failed with reason: /, '');
  }
}

test('a body with a million wrong items makes one error, not one per item, and the message names the first', () => {
  const schema = { type: 'object', properties: { tags: { type: 'array', items: { type: 'string', maxLength: 64 } } } };
  const { request } = validators('3.0.3', schema);
  const body = { tags: new Array(1_000_000).fill(0) };
  assert.equal(request(body), false);
  // Before: 1,000,000 error objects (142 MiB), kept on the shared validator until its next request.
  assert.equal(request.errors?.length, 1);
  assert.equal(reasonOf(docWith('3.0.3', schema), body), 'request body /tags/0: must be string');
});

const uniqueCases: [items: unknown[], valid: boolean][] = [
  [[{ a: 1, b: [1, 2] }, { a: 1, b: [2, 1] }], true],
  [[{ a: 1, b: 2 }, { b: 2, a: 1 }], false],
  [[[1, { x: null }], [1, { x: null }]], false],
  [[1, 1.0], false],
  [[1, '1', true, null, [1], { 1: 1 }], true],
  [['a', 'b', 'a'], false],
];
for (const [items, valid] of uniqueCases) {
  test(`uniqueItems: ${JSON.stringify(items)} is ${valid ? 'unique' : 'refused'}, as JSON values compare`, () => {
    assert.equal(validators('3.0.3', { type: 'array', uniqueItems: true }).request(items), valid);
  });
}

test('uniqueItems names the first repeated item and the one it repeats', () => {
  const doc = docWith('3.0.3', { type: 'object', properties: { stop: { type: 'array', uniqueItems: true } } });
  assert.equal(reasonOf(doc, { stop: ['a', 'b', { k: 1, l: 2 }, 'c', { l: 2, k: 1 }] }), 'request body /stop: must NOT have duplicate items (items ## 2 and 4 are identical)');
});

test('uniqueItems reads each item once, whatever the items are: its time grows with the array, not its square', () => {
  // Before: ajv compared every pair of items not declared scalar (10,000 objects: 5.5 s of event loop). Reads of a
  // property count the work without timing it.
  for (const items of [undefined, { type: 'object' }]) {
    let reads = 0;
    const array = Array.from({ length: 2000 }, (_, i) => Object.defineProperty({}, 'a', { enumerable: true, get: () => (reads++, i) }));
    assert.equal(validators('3.0.3', { type: 'array', uniqueItems: true, ...(items && { items }) }).request(array), true);
    assert.equal(reads, array.length, `items ${JSON.stringify(items)}`);
  }
});

const oas31: [what: string, schema: Record<string, unknown>, valid: unknown[], invalid: unknown[]][] = [
  ['unevaluatedProperties', { allOf: [{ type: 'object', properties: { a: { type: 'string' } } }], unevaluatedProperties: false }, [{ a: 'x' }], [{ a: 'x', evil: 1 }]],
  ['dependentRequired', { type: 'object', dependentRequired: { logprobs: ['top_logprobs'] } }, [{}, { logprobs: true, top_logprobs: 2 }], [{ logprobs: true }]],
  ['dependentSchemas', { type: 'object', dependentSchemas: { a: { required: ['b'] } } }, [{ a: 1, b: 2 }], [{ a: 1 }]],
  ['prefixItems with items: false', { type: 'array', prefixItems: [{ type: 'string' }, { type: 'integer' }], items: false }, [['a', 1]], [['a', 'b'], ['a', 1, 'extra']]],
  ['minContains', { type: 'array', contains: { type: 'string' }, minContains: 2 }, [['a', 'b']], [['a', 1]]],
  ['a type list with null', { type: ['string', 'null'] }, [null, 'a'], [1]],
  // `nullable` is 3.0's: a 3.1 schema says null in its type list, and one without a type is not refused.
  ['nullable, which 3.1 does not have', { type: 'string', nullable: true }, ['a'], [null]],
  ['nullable without a type', { nullable: true, minLength: 2 }, ['ab', 5], ['a']],
  // 2020-12 has no waiver for a required readOnly property: it is required in requests too.
  ['a required readOnly property', { type: 'object', required: ['id'], properties: { id: { type: 'string', readOnly: true } } }, [{ id: 'a' }], [{}]],
];
for (const [what, schema, valid, invalid] of oas31) {
  test(`OpenAPI 3.1, read as JSON Schema 2020-12: ${what}`, () => {
    const { request } = validators('3.1.0', schema);
    for (const v of valid) assert.equal(request(v), true, JSON.stringify(v));
    for (const v of invalid) assert.equal(request(v), false, JSON.stringify(v));
  });
}

test('OpenAPI 3.1 through the policy: a field the contract does not allow is refused, naming it', () => {
  const doc = docWith('3.1.0', { type: 'object', properties: { model: { type: 'string' } }, unevaluatedProperties: false });
  assert.equal(reasonOf(doc, { model: 'm', not_in_contract: 'x' }), 'request body /: must NOT have unevaluated properties');
});

test('a 3.0 document that uses a keyword of 3.1 is refused when the policy is built, not checked without it', () => {
  // Before: ajv's draft-07 validator skipped it, and the requests it forbids went through.
  for (const keyword of ['unevaluatedProperties', 'dependentRequired', 'prefixItems']) {
    const schema = { type: 'object', properties: { a: { [keyword]: keyword === 'prefixItems' ? [{}] : keyword === 'dependentRequired' ? { a: ['b'] } : false } } };
    assert.throws(() => oasValidation('oas', { openApi: docWith('3.0.3', schema) }, deps), {
      message: `/paths/~1x/post/requestBody/content/application~1json/schema: ${keyword} is JSON Schema 2020-12's (OpenAPI 3.1's), not OpenAPI 3.0's: declare openapi: 3.1.0 to use it`,
    });
  }
});

const oas30: [what: string, schema: Record<string, unknown>, valid: unknown[], invalid: unknown[]][] = [
  ['exclusiveMinimum: true', { type: 'number', minimum: 0, exclusiveMinimum: true }, [0.5], [0, -1]],
  ['exclusiveMaximum: true', { type: 'number', maximum: 10, exclusiveMaximum: true }, [9.5], [10, 11]],
  ['exclusiveMinimum: false', { type: 'number', minimum: 0, exclusiveMinimum: false }, [0, 1], [-1]],
  ['exclusiveMaximum: true without a maximum', { type: 'number', exclusiveMaximum: true }, [1e9], ['x']],
  ['nullable with a type', { type: 'string', nullable: true }, [null, 'a'], [1]],
  // 3.0.3: without `type`, nullable adds nothing; the other keywords decide.
  ['nullable beside allOf, without a type', { nullable: true, allOf: [{ $ref: '#/components/schemas/User' }] }, [{ name: 'a' }], [null, { name: 1 }]],
];
for (const [what, schema, valid, invalid] of oas30) {
  test(`OpenAPI 3.0, compiled as 3.0 means it (before: refused at load, or enforced on requests): ${what}`, () => {
    const { request } = validators('3.0.3', schema, schema, { User: { type: 'object', properties: { name: { type: 'string' } } } });
    for (const v of valid) assert.equal(request(v), true, JSON.stringify(v));
    for (const v of invalid) assert.equal(request(v), false, JSON.stringify(v));
  });
}

test('OpenAPI 3.0: a required readOnly property is required in answers only, a writeOnly one in requests only', () => {
  const components = {
    Id: { type: 'string', readOnly: true },
    Base: { type: 'object', properties: { id: { $ref: '#/components/schemas/Id' }, password: { type: 'string', writeOnly: true } } },
    // Declared on the property itself, through a $ref, and in an allOf member.
    User: { allOf: [{ $ref: '#/components/schemas/Base' }], type: 'object', required: ['id', 'password', 'name'], properties: { name: { type: 'string' } } },
    Item: { type: 'object', required: ['sku'], properties: { sku: { type: 'string', readOnly: true } } },
  };
  const user = { $ref: '#/components/schemas/User' };
  const { request, answer } = validators('3.0.3', user, user, components);
  assert.equal(request({ password: 'p', name: 'n' }), true, 'a request without the readOnly id');
  assert.equal(request({ name: 'n' }), false, 'a request without the writeOnly password');
  assert.equal(answer({ id: 'i', name: 'n' }), true, 'an answer without the writeOnly password');
  assert.equal(answer({ password: 'p', name: 'n' }), false, 'an answer without the readOnly id');
  const item = { $ref: '#/components/schemas/Item' };
  const items = validators('3.0.3', { type: 'array', items: item }, item, components);
  assert.equal(items.request([{}]), true);
  assert.equal(items.answer({}), false);
  // The policy's reading is the same.
  assert.equal(reasonOf(docWith('3.0.3', user, user, components), { password: 'p', name: 'n' }), 'ok');
});

test('the document given is not changed: its copies are', () => {
  const doc = docWith('3.0.3', { type: 'object', required: ['id'], properties: { id: { type: 'number', readOnly: true, minimum: 0, exclusiveMinimum: true } } });
  const before = structuredClone(doc);
  compileDocument(doc);
  assert.deepEqual(doc, before);
});
