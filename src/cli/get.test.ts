// `tollgate get`: what it takes as --admin and as a name, and what it makes of an answer that is not tollgate's.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readDocuments } from '../config/manifest.js';
import { getCommand } from './get.js';
import { runCommand } from './testing.js';

const PRODUCT = { apiVersion: 'apim.googleapis.com/v1', kind: 'APIProduct', metadata: { name: 'gold' }, spec: {}, status: { owner: 'api', createdAt: 0, lastModifiedAt: 0 } };

/** Answers each request with what `answer` gives for it; `seen` holds the paths asked for. */
let answer: (req: IncomingMessage, res: ServerResponse) => void;
const seen: string[] = [];
const server = createServer((req, res) => {
  seen.push(req.url!);
  answer(req, res);
});
let port: number;

before(async () => {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});
after(() => server.close());

const json = (body: unknown) => (_req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
};

test('--admin host:port is read as http://host:port (before: "localhost:" was taken for a scheme, and the command failed with "Invalid URL", exit 1)', async () => {
  answer = json({ items: [PRODUCT] });
  const r = await runCommand(getCommand, ['apiproduct', '--admin', `localhost:${port}`]);
  assert.equal(r.code, 0, r.err.join('\n'));
  assert.match(r.out[1], /^gold +api +1970-01-01T00:00:00\.000Z$/);
  for (const bad of ['localhost', 'ftp://127.0.0.1:8081', 'mailto:ops@example.com']) {
    const refused = await runCommand(getCommand, ['apiproduct', '--admin', bad]);
    assert.equal(refused.code, 2, bad);
    assert.deepEqual(refused.err, [`error: option '--admin <url>' argument '${bad}' is invalid. "${bad}" is not an http:// or https:// URL (e.g. http://127.0.0.1:8081)`]);
  }
});

test('an empty name (an unset shell variable) or "." is a bad argument: exit code 2, nothing asked (before: the list, read as one object)', async () => {
  answer = json({ items: [PRODUCT] });
  seen.length = 0;
  for (const name of ['', '.', '..', 'a/b']) {
    const r = await runCommand(getCommand, ['apiproduct', name, '--admin', `http://127.0.0.1:${port}`, '-o', 'yaml']);
    assert.equal(r.code, 2, name);
    assert.equal(r.err.length, 1, r.err.join('\n'));
    assert.match(r.err[0], new RegExp(`^error: command-argument value '${name.replace(/\./g, '\\.')}' is invalid for argument 'name'\\. ".*" is not an object name: must be letters, digits and - _ \\.`));
    assert.deepEqual(r.out, []);
  }
  assert.deepEqual(seen, []);
});

test('an answer that is not tollgate\'s (a login page, another JSON service) is one line and exit code 1 (before: a TypeError)', async () => {
  const html = (_req: IncomingMessage, res: ServerResponse) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>Sign in</html>');
  const cases: [answer: typeof answer, args: string[], what: string][] = [
    [html, [], 'text/html'],
    [html, ['gold'], 'text/html'],
    [json({ status: 'ok' }), [], 'JSON that is not an answer to /v1/manifests/APIProduct'],
    [json({ items: [{ name: 'gold' }] }), [], 'JSON that is not an answer to /v1/manifests/APIProduct'],
    [json([]), ['gold'], 'JSON that is not an answer to /v1/manifests/APIProduct/gold'],
    [(_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"items": ['), [], 'application/json that does not parse'],
  ];
  for (const [a, args, what] of cases) {
    answer = a;
    const r = await runCommand(getCommand, ['apiproduct', ...args, '--admin', `http://127.0.0.1:${port}`]);
    assert.equal(r.code, 1, what);
    assert.deepEqual(r.err, [`tollgate get: http://127.0.0.1:${port} did not answer like tollgate's admin API (HTTP 200, ${what}): is --admin the gateway's admin address?`]);
    assert.deepEqual(r.out, []);
  }
});

test('-o yaml writes a literal "<<" key quoted, so apply, which reads merge keys, takes it back as it was (before: merged into its parent)', async () => {
  const callout = {
    apiVersion: 'apim.googleapis.com/v1',
    kind: 'ServiceCallout',
    metadata: { name: 'merge' },
    spec: { request: { url: 'https://a.example.com/', body: { y: '2', '<<': { injected: '1' }, list: [{ '<<': 'x' }], text: '<<' } } },
    status: { owner: 'api', createdAt: 0, lastModifiedAt: 0 },
  };
  answer = json({ items: [callout, PRODUCT] });
  const r = await runCommand(getCommand, ['servicecallout', '--admin', `http://127.0.0.1:${port}`, '-o', 'yaml']);
  assert.equal(r.code, 0, r.err.join('\n'));
  const read = readDocuments(r.out.join('\n'), 'exported.yaml');
  assert.deepEqual(read.problems, []);
  assert.deepEqual(read.raws.map((d) => d.raw), [callout, PRODUCT]);
});
