// `tollgate` as a process among others: `npm start` stopped by a signal to npm alone, a reader that stops reading its
// output (`| head`), and a second demo started in the directory of a running one.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../src/sim/testing.js';
import { spawnCli } from './helpers/cli-child.js';

/** Generous bounds against a hung child, not measurements: a cold start on a busy 2-core machine takes seconds. */
const START_MS = 60_000;
const EXIT_MS = 30_000;

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const dirs: string[] = [];
const stops: (() => void)[] = [];

after(async () => {
  for (const stop of stops) stop();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tollgate-cli-process-'));
  dirs.push(dir);
  return dir;
}

interface Watched {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<number | null>;
}

/** `child`'s output as it comes, and its exit code; SIGKILLed at the end of the file if still running. */
function watch(child: ChildProcess): Watched {
  const w: Watched = { child, stdout: '', stderr: '', exited: once(child, 'exit').then(([code]) => code as number | null) };
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (w.stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (w.stderr += d));
  stops.push(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'));
  return w;
}

async function exitCode(w: Watched): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running after ${EXIT_MS} ms\nstdout: ${w.stdout}\nstderr: ${w.stderr}`)), EXIT_MS);
  });
  try {
    return await Promise.race([w.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function untilReady(w: Watched, label: string): Promise<void> {
  await waitFor(
    () => {
      if (w.child.exitCode !== null) throw new Error(`${label} exited with ${w.child.exitCode} first\nstdout: ${w.stdout}\nstderr: ${w.stderr}`);
      return /Ctrl-C stops/.test(w.stdout);
    },
    START_MS,
    `${label} (stdout: ${w.stdout} stderr: ${w.stderr})`,
    20,
  );
}

/** The five ports the demo's banner names: gateway, admin API, the fleet's three servers. */
function demoPorts(banner: string): number[] {
  const m = /gateway on http:\/\/127\.0\.0\.1:(\d+), admin on http:\/\/127\.0\.0\.1:(\d+), simulated fleet on (\d+), (\d+), (\d+)/.exec(banner);
  assert.ok(m, banner);
  return m.slice(1).map(Number);
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.on('connect', () => (socket.destroy(), resolve(true)));
    socket.on('error', () => resolve(false));
  });
}

/** npm itself, as `npm test` ran it, else the one on PATH. */
const NPM = process.env.npm_execpath?.endsWith('.js') ? [process.execPath, process.env.npm_execpath] : ['npm'];

const NO_DIST = existsSync(join(ROOT, 'dist', 'src', 'cli', 'main.js')) ? false : 'bin/tollgate.js needs dist/ (npm run build)';

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  // An IDE's stop button, a process manager or `docker stop` signals npm alone. npm passes it to the shell that runs the
  // script; without `exec` that shell did not pass it on: the demo ran on, orphaned, holding its five ports.
  test(`${signal} to \`npm start\` alone stops the demo and frees its ports`, { skip: NO_DIST }, async () => {
    const pkg = await tempDir();
    await writeFile(join(pkg, 'package.json'), await readFile(join(ROOT, 'package.json')));
    for (const entry of ['bin', 'dist', 'examples', 'node_modules']) await symlink(join(ROOT, entry), join(pkg, entry));
    const env = { ...process.env };
    delete env.TOLLGATE_ADMIN_TOKEN;
    delete env.TOLLGATE_LOG_LEVEL;
    // Its own process group: what is left of it (an orphaned demo before the fix) is killed as one at the end.
    const npm = spawn(NPM[0], [...NPM.slice(1), 'start', '--', '--port', '0', '--admin-port', '0', '--sim-port', '0'], { cwd: pkg, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const w = watch(npm);
    try {
      await untilReady(w, 'npm start');
      const ports = demoPorts(w.stdout);
      process.kill(npm.pid!, signal);
      await exitCode(w);
      await waitFor(async () => (await Promise.all(ports.map(accepts))).every((open) => !open), EXIT_MS, `ports ${ports.join(', ')} freed`, 100);
    } finally {
      try {
        process.kill(-npm.pid!, 'SIGKILL');
      } catch {
        // The group has gone: nothing left over.
      }
    }
  });
}

test('a reader that stops reading (`| head`) ends the output, not the command: its own exit code, no stack trace', async () => {
  const posts: string[] = [];
  const admin = createServer((req, res) => {
    posts.push(`${req.method} ${req.url}`);
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ results: [{ kind: 'APIProduct', name: 'gold', outcome: 'created' }] }));
  }).listen(0, '127.0.0.1');
  await once(admin, 'listening');
  try {
    const url = `http://127.0.0.1:${(admin.address() as AddressInfo).port}`;
    const dir = await tempDir();
    const file = join(dir, 'gold.yaml');
    await writeFile(file, 'apiVersion: apim.googleapis.com/v1\nkind: APIProduct\nmetadata: { name: gold }\nspec: { displayName: Gold }\n');

    // The reader is gone before the command writes (its start takes far longer than closing the pipe here).
    const applied = watch(spawnCli(['apply', '-f', file, '--admin', url], dir));
    applied.child.stdout!.destroy();
    // Before: "Error: write EPIPE" with a stack, exit code 1, for an apply the gateway had committed.
    assert.equal(await exitCode(applied), 0, applied.stderr);
    assert.equal(applied.stderr, '');
    assert.deepEqual(posts, ['POST /v1/apply']);

    // stderr closed too (`2>&1 | head`): a failing command keeps its own code (2: a token an Authorization header cannot carry).
    const failed = watch(spawnCli(['get', 'apiproduct', '--admin', url], dir, { TOLLGATE_ADMIN_TOKEN: 'two words' }));
    failed.child.stdout!.destroy();
    failed.child.stderr!.destroy();
    assert.equal(await exitCode(failed), 2);
  } finally {
    admin.close();
  }
});

test('a second demo in the directory of a running one: one line saying which process holds it, exit code 2 as serve gives', async () => {
  const dir = await tempDir();
  const first = watch(spawnCli(['demo', '--port', '0', '--admin-port', '0', '--sim-port', '0'], dir));
  await untilReady(first, 'the first demo');
  const second = watch(spawnCli(['demo', '--port', '0', '--admin-port', '0', '--sim-port', '0'], dir));
  // Before: exit code 1, and the advice to give each gateway process its own analytics.directory, which the demo has no way to set.
  assert.equal(await exitCode(second), 2, second.stderr);
  assert.equal(second.stderr, `tollgate demo: another tollgate demo or gateway (process ${first.child.pid}) holds ${join(dir, '.tollgate')}; stop it, or run the demo from another directory\n`);
  assert.equal(second.stdout, '');
  first.child.kill('SIGINT');
  assert.equal(await exitCode(first), 0, first.stderr);
});
