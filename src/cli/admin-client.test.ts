// The admin API client of the CLI: a gateway that accepts the connection and never answers ends the command.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { CommanderError } from 'commander';
import { callAdmin, type CommandIo } from './admin-client.js';

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
