// OASValidation beyond the basics: path parameters against their schemas, array parameters in each style, repeated
// query parameters, `format`, and body schemas under media types with parameters or a `+json` suffix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { GatewayError } from '../../../gateway/errors.js';
import { MemoryCounterStore } from '../../../store/counters/memory.js';
import { fakeContext, testDeps, type FakeRequest } from '../../testing.js';
import { oasValidation } from './oas-validation.js';

const deps = testDeps(new MemoryCounterStore());

const API = {
  openapi: '3.0.3',
  info: { title: 'params', version: '1' },
  components: { schemas: { Op: { type: 'string', enum: ['embeddings', 'completions'] } } },
  paths: {
    '/v1/{op}': {
      parameters: [{ in: 'path', name: 'op', required: true, schema: { $ref: '#/components/schemas/Op' } }],
      post: {
        parameters: [
          { in: 'query', name: 'tags', schema: { type: 'array', items: { type: 'string', minLength: 2 } } },
          { in: 'query', name: 'ids', explode: false, schema: { type: 'array', items: { type: 'integer' } } },
          { in: 'query', name: 'piped', style: 'pipeDelimited', schema: { type: 'array', items: { type: 'integer' } } },
          { in: 'query', name: 'limit', schema: { type: 'integer', maximum: 10 } },
          { in: 'header', name: 'x-flags', schema: { type: 'array', items: { enum: ['a', 'b'] } } },
        ],
        requestBody: {
          content: {
            'text/plain': { schema: { type: 'string' } },
            'application/json; charset=utf-8': {
              schema: {
                type: 'object',
                required: ['model'],
                properties: { user: { type: 'string', format: 'email' }, id: { type: 'string', format: 'uuid' }, n: { type: 'integer', format: 'int32' }, at: { type: 'string', format: 'date-time' } },
              },
            },
          },
        },
      },
    },
    '/files/{name}.{ext}': {
      get: {
        parameters: [
          { in: 'path', name: 'name', required: true, schema: { type: 'string', pattern: '^[a-z.]+$' } },
          { in: 'path', name: 'ext', required: true, schema: { enum: ['txt', 'md'] } },
        ],
      },
    },
    '/items/{id}': {
      get: { parameters: [{ in: 'path', name: 'id', required: true, schema: { type: 'integer', minimum: 1 } }] },
      put: { requestBody: { content: { 'application/merge-patch+json': { schema: { type: 'object', properties: { max_tokens: { type: 'string' } } } } } } },
    },
  },
};

const policy = oasValidation('oas', { openApi: API }, deps);

function reasonOf(r: FakeRequest): string {
  try {
    policy.admit!(fakeContext({ url: '/v1/embeddings', ...r }), {});
    return 'ok';
  } catch (err) {
    return `${(err as GatewayError).status} ${(err as GatewayError).message.replace(/^OASValidation oas failed with reason: /, '')}`;
  }
}

const cases: [name: string, r: FakeRequest, reason: string][] = [
  // Path parameters
  ['a path parameter in its enum', { url: '/v1/embeddings' }, 'ok'],
  ['a path parameter outside its enum', { url: '/v1/moderations' }, '400 path parameter "op" must be equal to one of the allowed values'],
  ['two parameters in one segment', { method: 'GET', url: '/files/notes.old.md' }, 'ok'],
  ['the second of two in one segment', { method: 'GET', url: '/files/notes.pdf' }, '400 path parameter "ext" must be equal to one of the allowed values'],
  ['the first of two in one segment', { method: 'GET', url: '/files/Notes.md' }, '400 path parameter "name" must match pattern "^[a-z.]+$"'],
  ['a path parameter read as its type', { method: 'GET', url: '/items/7' }, 'ok'],
  ['a path parameter against its type', { method: 'GET', url: '/items/seven' }, '400 path parameter "id" must be integer'],
  ['a path parameter against its minimum', { method: 'GET', url: '/items/0' }, '400 path parameter "id" must be >= 1'],
  ['a path parameter percent-decoded', { method: 'GET', url: '/files/a%2Eb.md' }, 'ok'],
  ['a path parameter that is not percent-encoding', { method: 'GET', url: '/files/a%zz.md' }, '400 the path /files/a%zz.md is not valid percent-encoding'],
  // Array query parameters: repeated (form, explode: the default), or delimited in one value
  ['one value of an array parameter', { url: '/v1/embeddings?tags=ab' }, 'ok'],
  ['repeated values of an array parameter', { url: '/v1/embeddings?tags=ab&tags=cd' }, 'ok'],
  ['an array item against its schema', { url: '/v1/embeddings?tags=ab&tags=c' }, '400 query parameter "tags" item 1: must NOT have fewer than 2 characters'],
  ['a comma-delimited array (explode: false)', { url: '/v1/embeddings?ids=1,2,3' }, 'ok'],
  ['a comma-delimited array item against its type', { url: '/v1/embeddings?ids=1,x' }, '400 query parameter "ids" item 1: must be integer'],
  ['a pipe-delimited array', { url: '/v1/embeddings?piped=1|2' }, 'ok'],
  ['a header array', { headers: { 'x-flags': 'a, b' } }, 'ok'],
  ['a header array item against its schema', { headers: { 'x-flags': 'a,c' } }, '400 header parameter "x-flags" item 1: must be equal to one of the allowed values'],
  // A scalar given twice is ambiguous: the model server may read the value not checked
  ['a scalar query parameter once', { url: '/v1/embeddings?limit=5' }, 'ok'],
  ['a scalar query parameter twice', { url: '/v1/embeddings?limit=5&limit=99' }, '400 query parameter "limit" must not be given more than once'],
  ['a delimited array given twice', { url: '/v1/embeddings?ids=1&ids=2' }, '400 query parameter "ids" must not be given more than once'],
  // format, and the body schema under `application/json; charset=utf-8` (with a text/plain one before it)
  ['formats that hold', { body: { user: 'a@example.com', id: '0b7d3c52-8f1e-4a4b-9f5c-3c1e2d7a9b10', n: 5, at: '2025-06-02T12:00:00Z' } }, 'ok'],
  ['an email that is none', { body: { user: 'not-an-email' } }, '400 request body /user: must match format "email"'],
  ['a uuid that is none', { body: { id: 'nope' } }, '400 request body /id: must match format "uuid"'],
  ['an int32 out of range', { body: { n: 2 ** 31 } }, '400 request body /n: must match format "int32"'],
  ['a date-time that is none', { body: { at: '2025-02-30T12:00:00Z' } }, '400 request body /at: must match format "date-time"'],
  ['a body under a media type with parameters', { body: { model: undefined } }, "400 request body /: must have required property 'model'"],
  ['a body under a +json media type', { method: 'PUT', url: '/items/1', body: { model: 'x', max_tokens: 5 } }, '400 request body /max_tokens: must be string'],
];
for (const [name, r, reason] of cases) test(`${name} → ${reason}`, () => assert.equal(reasonOf(r), reason));

test('a response schema under a media type with parameters is used too', async () => {
  const doc = { ...API, paths: { '/v1/{op}': { post: { responses: { 200: { content: { 'application/json;charset=UTF-8': { schema: { required: ['id'] } } } } } } } } };
  const flow = oasValidation('oas', { openApi: doc, validateResponses: true }, deps).respond!(fakeContext({ url: '/v1/embeddings' }), {}, 200)!;
  flow.headers!(200, { 'content-type': 'application/json;charset=UTF-8' });
  assert.throws(() => flow.body!(Buffer.from('{}'), 200), (err: GatewayError) => err.status === 502 && /must have required property 'id'/.test(err.message));
});
