// The exit codes `tollgate` promises (README, Command line): 2 for a bad flag on any command, however deeply nested,
// and the command's own code where it sets one (1: the gateway could not be reached).
import { test, type TestContext } from 'node:test';
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

/** What `main(argv)` writes to stderr, and its exit code. */
async function run(t: TestContext, argv: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const write = t.mock.method(process.stderr, 'write', (chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
  // Commander's help exits with process.exitCode, which node:test sets to 1 in this process once any test of the files
  // sharing it has failed: `help` then read as exit code 2, one failure posing as two.
  const exitCode = process.exitCode;
  process.exitCode = undefined;
  try {
    return { code: await main(argv), stderr };
  } finally {
    process.exitCode = exitCode;
    write.mock.restore();
  }
}

test('an unknown flag is named even when a required option is missing too', async (t) => {
  for (const [argv, flag] of [
    [['serve', '--bogus'], '--bogus'],
    [['apply', '--nope'], '--nope'],
  ] as const) {
    const { code, stderr } = await run(t, [...argv]);
    assert.equal(code, 2, argv.join(' '));
    // Before: "error: required option '--config <path>' not specified", the flag never named.
    assert.match(stderr, new RegExp(`unknown option '${flag}'`), stderr);
  }
  const missing = await run(t, ['serve']);
  assert.equal(missing.code, 2);
  assert.equal(missing.stderr, "error: required option '--config <path>' not specified\n");
});

test('tollgate analytics refuses --since with --from or --to (exit 2) instead of letting one win', async (t) => {
  // An unreachable gateway: were the flags taken, the command would fail there with exit code 1.
  const closed = createServer().listen(0, '127.0.0.1');
  await once(closed, 'listening');
  const admin = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
  closed.close();
  for (const other of [['--from', '2025-01-31T00:00:00Z'], ['--to', '2025-01-31T00:00:00Z']]) {
    const { code, stderr } = await run(t, ['analytics', '--admin', admin, '--since', '6h', ...other]);
    assert.equal(code, 2, other[0]);
    assert.match(stderr, new RegExp(`option '--since <duration>' cannot be used with option '${other[0]} <time>'`), stderr);
  }
});

test('an unknown TOLLGATE_LOG_LEVEL is one line and exit code 2, for serve and demo (before: pino\'s own message, exit 1)', async (t) => {
  const before = process.env.TOLLGATE_LOG_LEVEL;
  process.env.TOLLGATE_LOG_LEVEL = 'verbose';
  t.after(() => {
    if (before === undefined) delete process.env.TOLLGATE_LOG_LEVEL;
    else process.env.TOLLGATE_LOG_LEVEL = before;
  });
  // Refused before anything is read or opened: the --config path does not exist.
  for (const argv of [['serve', '--config', '/nonexistent', '--port', '0'], ['demo', '--port', '0']]) {
    const { code, stderr } = await run(t, argv);
    assert.equal(code, 2, argv[0]);
    assert.equal(stderr, `tollgate ${argv[0]}: TOLLGATE_LOG_LEVEL: "verbose" is not one of trace, debug, info, warn, error, fatal, silent\n`);
  }
});

test('with several bad flags, the first on the command line is named, whatever is wrong with each (README)', async (t) => {
  const cases: [argv: string[], named: RegExp][] = [
    // Before: the bad value after it was named, never --bogus.
    [['serve', '--bogus', '--port', 'abc'], /^error: unknown option '--bogus'/],
    [['serve', '--port', 'abc', '--bogus'], /^error: option '--port <n>' argument 'abc' is invalid/],
    [['analytics', '--bogus', '--bucket', '7m'], /^error: unknown option '--bogus'/],
    [['analytics', '--bucket', '7m', '--bogus'], /^error: option '--bucket <size>' argument '7m' is invalid/],
    [['analytics', '--bogus', '--since', '6h', '--from', '2025-01-31T00:00:00Z'], /^error: unknown option '--bogus'/],
    [['get', 'apiproduct', '--nope', '-o', 'xml'], /^error: unknown option '--nope'/],
    [['get', 'apiproduct', '-oxml', '--nope'], /^error: option '-o, --output <format>' argument 'xml' is invalid/],
    // A value that starts with a dash is a value, not a flag.
    [['apply', '-f', '--nope', '--dry-run=yes'], /^error: unknown option '--dry-run=yes'/],
    [['bench', 'decision', '--bogus', '--endpoints', '0'], /^error: unknown option '--bogus'/],
  ];
  for (const [argv, named] of cases) {
    const { code, stderr } = await run(t, argv);
    assert.equal(code, 2, argv.join(' '));
    assert.match(stderr, named, argv.join(' '));
  }
  // Help asked for anywhere is shown, whatever else is wrong.
  assert.equal((await run(t, ['serve', '--bogus', '--help'])).code, 0);
});

test('a missing command is a usage error: help on stderr, exit code 2; an unknown help topic is one line, exit code 2', async (t) => {
  // Before: exit code 0, so a CI step `tollgate bench` ran nothing and succeeded.
  for (const [argv, usage] of [
    [[], 'Usage: tollgate [options] [command]'],
    [['bench'], 'Usage: tollgate bench [options] [command]'],
  ] as const) {
    const { code, stderr } = await run(t, [...argv]);
    assert.equal(code, 2, argv.join(' '));
    assert.equal(stderr.split('\n')[0], usage);
  }
  // Before: the general help, exit code 0.
  assert.deepEqual(await run(t, ['help', 'nonexistent']), { code: 2, stderr: "error: unknown command 'nonexistent'\n" });
  // Help asked for goes to stdout with exit code 0.
  for (const argv of [['help'], ['--help'], ['help', 'bench'], ['bench', '--help']]) assert.deepEqual(await run(t, argv), { code: 0, stderr: '' }, argv.join(' '));
});
