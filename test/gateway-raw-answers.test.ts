// What node:http refuses before the data plane sees it (a malformed request) is answered in the fault format the
// APIMExtensionPolicy configures, like every refusal the data plane makes itself.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { manifest, poolAndModel } from './helpers/manifests.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

let gateway: Gateway;

before(async () => {
  gateway = await startGateway({
    configPaths: [],
    manifests: [
      manifest('APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: true, targetRef: { name: 'tollgate', kind: 'Gateway' }, faultFormat: 'apigee' }),
      ...poolAndModel(['http://127.0.0.1:9']),
    ],
    ...LOOPBACK,
  });
});

after(() => gateway?.close());

/** Writes `request` on a connection of its own; resolves with the answer's JSON body once the gateway closes it. */
function rawBody(request: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = connect(gateway.port, '127.0.0.1');
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => resolve(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4))));
    socket.end(request);
  });
}

test('a malformed request gets the Apigee fault shape, as a refusal by a policy does', async () => {
  const refused = await fetch(`${gateway.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }) });
  assert.equal(refused.status, 401);
  assert.deepEqual(Object.keys((await refused.json()) as object), ['fault', 'error']);

  const body = (await rawBody('GARBAGE\r\n\r\n')) as { fault: unknown; error: { message: string } };
  const message = body.error.message;
  assert.deepEqual(body, { fault: { faultstring: message, detail: { errorcode: 'invalid_request' } }, error: { message, type: 'invalid_request_error', code: 'invalid_request' } });
});
