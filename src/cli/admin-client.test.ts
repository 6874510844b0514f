// The admin API client of the CLI: a gateway that accepts the connection and never answers ends the command.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { CommanderError } from 'commander';
import { callAdmin, type CommandIo, type Expected } from './admin-client.js';

test('an admin port that accepts connections but never answers ends the command with exit code 1 (before: it hung)', async () => {
  const sockets: Socket[] = [];
  const silent = createServer((s) => void sockets.push(s)).listen(0, '127.0.0.1');
  await once(silent, 'listening');
  const errors: string[] = [];
  const io: CommandIo = { out: () => {}, err: (line) => void errors.push(line), env: {} };
  try {
    const started = performance.now();
    await assert.rejects(
      callAdmin('get', io, new URL(`http://127.0.0.1:${(silent.address() as AddressInfo).port}/v1/manifests/APIProduct`), { timeoutMs: 300 }),
      (err: unknown) => err instanceof CommanderError && err.exitCode === 1,
    );
    assert.ok(performance.now() - started < 5000);
    assert.match(errors[0], /^tollgate get: cannot reach the admin API at http:\/\/127\.0\.0\.1:\d+: .*timeout/i);
  } finally {
    for (const s of sockets) s.destroy();
    silent.close();
  }
});

test('TOLLGATE_ADMIN_TOKEN is sent without the white space around it; one with white space inside is a bad input (exit 2), never shown', async () => {
  const seen: (string | undefined)[] = [];
  const server = createHttpServer((req, res) => {
    seen.push(req.headers.authorization);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/manifests/APIProduct`);
  const errors: string[] = [];
  const io = (token: string): CommandIo => ({ out: () => {}, err: (line) => void errors.push(line), env: { TOLLGATE_ADMIN_TOKEN: token } });
  try {
    // A Secret file's trailing newline (before: sent as is, and undici refused the header: "cannot reach the admin API").
    assert.equal((await callAdmin('get', io('s3cret-token\n'), url)).status, 200);
    assert.deepEqual(seen, ['Bearer s3cret-token']);
    for (const token of ['s3cret token', 's3cret\ttoken', 'sécret-token']) {
      await assert.rejects(callAdmin('get', io(token), url), (err: unknown) => err instanceof CommanderError && err.exitCode === 2);
    }
    assert.equal(seen.length, 1, 'nothing sent');
    assert.equal(errors.length, 3);
    for (const line of errors) {
      assert.equal(line, 'tollgate get: TOLLGATE_ADMIN_TOKEN holds white space or characters other than visible ASCII, which an Authorization header cannot carry as a bearer token');
    }
  } finally {
    server.close();
  }
});

test('an answer that is not tollgate\'s JSON (or, where asked for, CSV) ends the command with exit code 1, whatever its status', async () => {
  let answer: { status: number; type?: string; body: string } = { status: 200, body: '' };
  const server = createHttpServer((_req, res) => {
    res.writeHead(answer.status, answer.type ? { 'content-type': answer.type } : {}).end(answer.body);
  }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/analytics/stats`);
  const errors: string[] = [];
  const io: CommandIo = { out: () => {}, err: (line) => void errors.push(line), env: {} };
  const csv = { csv: true };
  try {
    const taken: [typeof answer, Expected | undefined][] = [
      [{ status: 200, type: 'text/csv; charset=utf-8', body: 'bucket_start\n' }, csv],
      // The gateway's refusal of a CSV query is JSON.
      [{ status: 400, type: 'application/json', body: '{"error":{"message":"bad bucket"}}' }, csv],
      [{ status: 200, type: 'Application/JSON; charset=utf-8', body: '{"rows":[]}' }, undefined],
    ];
    for (const [a, expect] of taken) {
      answer = a;
      const got = await callAdmin('analytics', io, url, { expect });
      assert.equal(got.status, a.status);
      assert.equal(got.text, a.body);
    }
    answer = taken[0][0];
    assert.equal((await callAdmin('analytics', io, url, { expect: csv })).body, undefined);
    answer = { status: 400, type: 'application/json', body: '{"error":{"message":"bad bucket"}}' };
    assert.equal((await callAdmin('analytics', io, url, { expect: csv })).error?.message, 'bad bucket');

    const refused: [typeof answer, Expected | undefined, string][] = [
      // Before: printed as the CSV, exit code 0.
      [{ status: 200, type: 'text/html', body: '<html>Sign in</html>' }, csv, 'HTTP 200, text/html'],
      [{ status: 200, type: 'application/json', body: '{"rows":[]}' }, csv, 'HTTP 200, application/json'],
      [{ status: 404, type: 'text/html', body: '<h1>Not Found</h1>' }, undefined, 'HTTP 404, text/html'],
      [{ status: 200, body: '{}' }, undefined, 'HTTP 200, no content-type'],
      [{ status: 502, type: 'text/plain', body: 'Bad Gateway' }, csv, 'HTTP 502, text/plain'],
    ];
    for (const [a, expect, what] of refused) {
      answer = a;
      errors.length = 0;
      await assert.rejects(callAdmin('analytics', io, url, { expect }), (err: unknown) => err instanceof CommanderError && err.exitCode === 1);
      assert.deepEqual(errors, [`tollgate analytics: ${url.origin} did not answer like tollgate's admin API (${what}): is --admin the gateway's admin address?`]);
    }
  } finally {
    server.close();
  }
});
