// The exit codes `tollgate` promises (README, Command line): 2 for a bad flag on any command, however deeply nested,
// and the command's own code where it sets one (1: the gateway could not be reached).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { main } from './main.js';

test('a bad flag of a bench subcommand exits 2, as on any other command', async (t) => {
  // Without an exit override commander ends the process itself (code 1): make that visible instead.
  t.mock.method(process, 'exit', (code?: number) => {
    throw new Error(`process.exit(${code}) called`);
  });
  for (const argv of [
    ['bench', 'decision', '--endpoints', '0'],
    ['bench', 'overhead', '--rounds', 'x'],
    ['bench', 'routing', '--workloads', 'nope'],
    ['bench', 'sanitize', '--bogus'],
    ['bench', 'semantic-cache', '--questions', '-1'],
  ]) {
    assert.equal(await main(argv), 2, argv.join(' '));
  }
  assert.equal(await main(['bench', 'decision', '--help']), 0);
});

test("tollgate analytics keeps its own exit code: 1 when the gateway cannot be reached", async () => {
  const closed = createServer().listen(0, '127.0.0.1');
  await once(closed, 'listening');
  const port = (closed.address() as AddressInfo).port;
  closed.close();
  assert.equal(await main(['analytics', '--admin', `http://127.0.0.1:${port}`]), 1);
  assert.equal(await main(['analytics', '--bucket', '2m']), 2);
});
