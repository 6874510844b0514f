// `tollgate serve` started with a --db or --redis it cannot use (unreachable, unsupported, a missing directory): as
// DESIGN.md says of bad flags, one clear line naming the flag and exit code 2, never a stack trace or code 1.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../src/lib/ports.js';
import { spawnCli } from './helpers/cli-child.js';
import { poolAndModel } from './helpers/manifests.js';

const EXIT_MS = 60_000;
const children = new Set<ChildProcess>();
const dirs: string[] = [];

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** Runs `tollgate ARGS` from source in `cwd`; resolves with its exit code and output once it exits. */
async function runCli(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnCli(args, cwd);
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), EXIT_MS);
  const [code] = await once(child, 'exit');
  clearTimeout(timer);
  children.delete(child);
  return { code: code as number | null, stdout, stderr };
}

describe('tollgate serve with a --db or --redis it cannot use', () => {
  test('each gives exit code 2 and one line naming the flag (passwords hidden)', { timeout: 300_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tollgate-failure-cli-'));
    dirs.push(dir);
    const file = join(dir, 'pool.yaml');
    await writeFile(
      file,
      poolAndModel(['http://127.0.0.1:9'])
        .map((m) => JSON.stringify({ apiVersion: m.apiVersion, kind: m.kind, metadata: { name: m.metadata.name }, spec: m.spec }))
        .join('\n---\n'),
    );
    // A port nothing listens on: connections are refused at once.
    const closed = await freePort();
    const cases: [string[], RegExp][] = [
      [['--redis', `redis://127.0.0.1:${closed}`], /^tollgate: --redis redis:\/\/127\.0\.0\.1:\d+: Redis is unavailable: .*ECONNREFUSED/],
      [['--redis', 'http://127.0.0.1:6379'], /--redis: expected redis:\/\/, rediss:\/\/, redis\+sentinel:\/\/.* or redis\+cluster:\/\/.*, got "http:\/\/127\.0\.0\.1:6379\/?"$/],
      // A password holding an unencoded `/` (base64): no piece of it in the message.
      [['--redis', 'redis+sentinel://:Zm9v/s3cret@127.0.0.1:1/m'], /--redis: a host is no HOST:PORT \(a user or password holding .* must be percent-encoded .*\), got "redis\+sentinel:\/\/\*\*\*@127\.0\.0\.1:1\/m"$/],
      [['--redis', 'redis://u:s3cret/x@127.0.0.1:1'], /--redis: not a URL \(a user or password holding/],
      [['--redis', 'redis+sentinel://:s3cret@127.0.0.1:1'], /--redis: redis\+sentinel:\/\/HOSTS\/NAME: the primary group Sentinel watches is missing, got "redis\+sentinel:\/\/:\*\*\*@127\.0\.0\.1:1"$/],
      [['--redis', `redis+cluster://:s3cret@127.0.0.1:${closed}`], /^tollgate: --redis redis\+cluster:\/\/:\*\*\*@127\.0\.0\.1:\d+: Redis is unavailable: /],
      [['--redis', `redis+sentinel://127.0.0.1:${closed}/primary`], /^tollgate: --redis redis\+sentinel:\/\/127\.0\.0\.1:\d+\/primary: Redis is unavailable: /],
      [['--db', `postgres://tollgate:s3cret@127.0.0.1:${closed}/x`], /^tollgate: --db: cannot open the database postgres:\/\/tollgate:\*\*\*@127\.0\.0\.1:\d+\/x: .*ECONNREFUSED/],
      [['--db', 'mysql://127.0.0.1/x'], /^tollgate: --db: unsupported database URL/],
      [['--db', `sqlite:${join(dir, 'no', 'such', 'dir', 't.db')}`], /^tollgate: --db: cannot open the database sqlite:.*: .*directory does not exist/],
      // A relative file (the default is one) with where it leads from the working directory.
      [['--db', 'sqlite:no/such/dir/t.db'], new RegExp(`^tollgate: --db: cannot open the database sqlite:no/such/dir/t\\.db \\(${join(dir, 'no', 'such', 'dir', 't.db').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\): .*directory does not exist`)],
    ];
    for (const [flags, expected] of cases) {
      const port = await freePort();
      const r = await runCli(['serve', '--config', file, '--port', String(port), '--admin-port', '0', '--db', `sqlite:${join(dir, 't.db')}`, ...flags], dir);
      const lines = r.stderr.trimEnd().split('\n');
      // Before the fix: exit code 1 and the driver's bare message ("tollgate: connect ECONNREFUSED ..."), or for an
      // http:// Redis URL a Unix-socket ENOENT.
      assert.equal(r.code, 2, `${flags.join(' ')}: exit code\n${r.stderr}`);
      assert.equal(lines.length, 1, `${flags.join(' ')}: one line\n${r.stderr}`);
      assert.match(lines[0], expected, flags.join(' '));
      assert.doesNotMatch(r.stderr, /s3cret/);
      assert.doesNotMatch(r.stdout, /tollgate is serving/);
    }
  });

  test('an analytics directory it cannot use is a configuration error: exit code 2 and one line naming it', { timeout: 120_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tollgate-failure-cli-'));
    dirs.push(dir);
    const notADirectory = join(dir, 'a-file');
    await writeFile(notADirectory, 'not a directory');
    const manifests = [
      ...poolAndModel(['http://127.0.0.1:9']),
      { apiVersion: 'tollgate.dev/v1alpha1', kind: 'GatewaySettings', metadata: { name: 'settings' }, spec: { analytics: { directory: 'a-file/spool' } } },
    ];
    const file = join(dir, 'config.yaml');
    await writeFile(file, manifests.map((m) => JSON.stringify({ apiVersion: m.apiVersion, kind: m.kind, metadata: { name: m.metadata.name }, spec: m.spec })).join('\n---\n'));
    const port = await freePort();
    const r = await runCli(['serve', '--config', file, '--port', String(port), '--admin-port', '0', '--db', `sqlite:${join(dir, 't.db')}`], dir);
    const lines = r.stderr.trimEnd().split('\n');
    // Before: exit code 1 and the bare ENOTDIR of mkdir.
    assert.equal(r.code, 2, r.stderr);
    assert.equal(lines.length, 1, r.stderr);
    // A relative directory (the default is one) with where it leads from the working directory.
    assert.ok(lines[0].startsWith(`tollgate: config: analytics.directory a-file/spool (${join(notADirectory, 'spool')}): `), lines[0]);
    assert.match(lines[0], /ENOTDIR/);
    assert.doesNotMatch(r.stdout, /tollgate is serving/);
  });
});
