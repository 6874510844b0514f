// Where API keys are read from, and the Bearer tokens that are not API keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readApiKey } from './api-key.js';

const cases: [name: string, headers: Record<string, string>, key: string | undefined][] = [
  ['x-api-key', { 'x-api-key': 'tg_abc' }, 'tg_abc'],
  ['Bearer', { authorization: 'Bearer tg_abc' }, 'tg_abc'],
  ['bearer in any case, trailing space', { authorization: 'bearer tg_abc ' }, 'tg_abc'],
  ['x-api-key wins over Bearer', { 'x-api-key': 'tg_one', authorization: 'Bearer tg_two' }, 'tg_one'],
  ['an imported key without the prefix', { authorization: 'Bearer legacy-key-123' }, 'legacy-key-123'],
  ['a JWT is not an API key', { authorization: 'Bearer aaa.bbb.ccc' }, undefined],
  ['an OAuth access token is not an API key', { authorization: 'Bearer tgat_xyz' }, undefined],
  ['Basic is not Bearer', { authorization: 'Basic dXNlcjpwYXNz' }, undefined],
  ['empty x-api-key', { 'x-api-key': '' }, undefined],
  ['nothing', {}, undefined],
];

for (const [name, headers, key] of cases) {
  test(name, () => assert.equal(readApiKey(headers), key));
}

test('a dotted key with two or four parts is still a key', () => {
  assert.equal(readApiKey({ authorization: 'Bearer a.b' }), 'a.b');
  assert.equal(readApiKey({ authorization: 'Bearer a.b.c.d' }), 'a.b.c.d');
});
