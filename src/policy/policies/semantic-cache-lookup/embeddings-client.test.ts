// The embeddings client's headers: values as given, and {env} references read from the environment once, at build.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { embeddingsClient } from './embeddings-client.js';

test('a header given as {env} is sent with the variable\'s value; an unset variable is refused at build, naming the header', async () => {
  let seen: IncomingHttpHeaders = {};
  const server = createServer((req, res) => {
    seen = req.headers;
    req.resume();
    req.on('end', () => res.end(JSON.stringify({ data: [{ embedding: [3, 4] }] })));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  process.env.TG_TEST_EMBEDDINGS_TOKEN = 'Bearer from-env';
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/embeddings`;
    const embed = embeddingsClient({ url, model: 'e5', headers: { authorization: { env: 'TG_TEST_EMBEDDINGS_TOKEN' }, 'x-trace': 'on' }, timeout: 2000 });
    assert.deepEqual([...(await embed('hello'))], [0.6000000238418579, 0.800000011920929]);
    assert.equal(seen.authorization, 'Bearer from-env');
    assert.equal(seen['x-trace'], 'on');
    assert.throws(
      () => embeddingsClient({ url, model: 'e5', headers: { authorization: { env: 'TG_TEST_UNSET_VARIABLE' } }, timeout: 2000 }),
      /spec\.embeddings\.headers\.authorization: environment variable TG_TEST_UNSET_VARIABLE is not set/,
    );
  } finally {
    delete process.env.TG_TEST_EMBEDDINGS_TOKEN;
    await new Promise((resolve) => server.close(resolve));
  }
});
