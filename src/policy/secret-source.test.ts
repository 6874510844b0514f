import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveHeaderSecret, resolveHeaders, resolveSecret } from './secret-source.js';

const VARS: Record<string, string> = {
  TOLLGATE_TEST_SECRET_PLAIN: 's3cret',
  // A Secret made with `kubectl create secret --from-file`: the file's last line break comes along.
  TOLLGATE_TEST_SECRET_NEWLINE: 's3cret\n',
  TOLLGATE_TEST_SECRET_SPACES: ' \ts3cret\r\n',
  TOLLGATE_TEST_SECRET_BLANK: ' \n',
  TOLLGATE_TEST_SECRET_SPLIT: 's3cret\nx-injected: 1',
  TOLLGATE_TEST_SECRET_ESCAPE: 's3\x1b[31mcret',
  TOLLGATE_TEST_SECRET_WIDE: 's3cret\u20ac',
};
Object.assign(process.env, VARS);
after(() => {
  for (const name of Object.keys(VARS)) delete process.env[name];
});

const cases: [env: string, expected: string | RegExp][] = [
  ['TOLLGATE_TEST_SECRET_PLAIN', 's3cret'],
  ['TOLLGATE_TEST_SECRET_NEWLINE', 's3cret'],
  ['TOLLGATE_TEST_SECRET_SPACES', 's3cret'],
  ['TOLLGATE_TEST_SECRET_BLANK', /^spec\.secret: environment variable TOLLGATE_TEST_SECRET_BLANK is not set$/],
  ['TOLLGATE_TEST_SECRET_SPLIT', /^spec\.secret: environment variable TOLLGATE_TEST_SECRET_SPLIT must not hold control characters/],
  ['TOLLGATE_TEST_SECRET_ESCAPE', /^spec\.secret: environment variable TOLLGATE_TEST_SECRET_ESCAPE must not hold control characters/],
  ['TOLLGATE_TEST_SECRET_WIDE', /^spec\.secret: environment variable TOLLGATE_TEST_SECRET_WIDE must not hold .* characters past U\+00FF/],
];
for (const [env, expected] of cases) {
  test(`a header secret from ${env}`, () => {
    if (typeof expected === 'string') return assert.equal(resolveHeaderSecret({ env }, 'spec.secret'), expected);
    assert.throws(
      () => resolveHeaderSecret({ env }, 'spec.secret'),
      (err: Error) => expected.test(err.message) && !err.message.includes('s3') && !err.message.includes('injected'),
    );
  });
}

test('a secret that is no header (key material) is trimmed but may hold line breaks: a PEM key does', () => {
  assert.equal(resolveSecret({ env: 'TOLLGATE_TEST_SECRET_SPLIT' }, 'spec.publicKey'), 's3cret\nx-injected: 1');
  assert.equal(resolveSecret({ env: 'TOLLGATE_TEST_SECRET_NEWLINE' }, 'spec.publicKey'), 's3cret');
});

test('headers of an outbound service: {env} values checked as header secrets, naming the header', () => {
  assert.deepEqual(resolveHeaders({ authorization: { env: 'TOLLGATE_TEST_SECRET_NEWLINE' }, 'x-team': 'a' }, 'spec.embeddings.headers'), { authorization: 's3cret', 'x-team': 'a' });
  assert.throws(() => resolveHeaders({ authorization: { env: 'TOLLGATE_TEST_SECRET_SPLIT' } }, 'spec.embeddings.headers'), /^Error: spec\.embeddings\.headers\.authorization: environment variable TOLLGATE_TEST_SECRET_SPLIT must not hold/);
});
