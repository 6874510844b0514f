// Benchmark children stop with the benchmark however it ends. Ctrl-C and a closed terminal signal the whole process
// group (SIGINT, SIGHUP): each child then closes as on SIGTERM, removing its temporary directories (Node's default
// ended it at once and left them, about 27 MB per tollgate). nginx, which watches for nothing, runs under a process
// that stops it when the benchmark is gone or signals (alone, it kept serving on its port for ever).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Child, waitReady } from '../bench/processes.js';
import { freePort } from '../src/lib/ports.js';
import type { RoutingServerArgs } from '../bench/routing-server.js';

const bench = (name: string) => fileURLToPath(new URL(`../bench/${name}.ts`, import.meta.url));

const NGINX = (() => {
  try {
    execFileSync('nginx', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/**
 * A benchmark child started as startChild starts it (its stdin a pipe from this process), in a process group of its
 * own as a terminal's foreground job is, with a temporary directory of its own; `run` gets it ready and cleans up.
 */
async function withChild(script: string, args: string[], run: (child: Child, tmp: string) => Promise<void>): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'tollgate-bench-stop-'));
  const proc = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['pipe', 'pipe', 'inherit'], detached: true, env: { ...process.env, TMPDIR: tmp } });
  try {
    await run(await waitReady(proc, 60_000, script), tmp);
  } finally {
    // Whatever is left of its group: the child, and an nginx the child failed to stop.
    try {
      process.kill(-proc.pid!, 'SIGKILL');
    } catch {
      // Nothing was left.
    }
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** How the child ended, within 15 s (its close has 10 s before it exits 1). */
async function ended(child: Child): Promise<string> {
  const [code, signal] = (await Promise.race([once(child.proc, 'exit'), new Promise((r) => setTimeout(r, 15_000, ['still running', null]).unref())])) as [unknown, unknown];
  return signal ? `signal ${signal}` : `exit ${code}`;
}

/** What the child left in its temporary directory (tsx keeps its own cache there too). */
const leftovers = (tmp: string) => readdirSync(tmp).filter((f) => f.startsWith('tollgate-'));

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('a tollgate of bench overhead, Ctrl-C (SIGINT to its group): closes, and its database directory is removed', { timeout: 120_000 }, async () => {
  await withChild(bench('overhead-roles'), ['tollgate', String(await freePort()), 'none'], async (child, tmp) => {
    assert.match(leftovers(tmp).join(), /^tollgate-bench-\w+$/);
    process.kill(-child.proc.pid!, 'SIGINT');
    assert.equal(await ended(child), 'exit 0');
    assert.deepEqual(leftovers(tmp), []);
  });
});

test("bench routing's gateway, terminal closed (SIGHUP to its group): closes, and its analytics spool is removed", { timeout: 120_000 }, async () => {
  const args: RoutingServerArgs = { urls: [`http://127.0.0.1:${await freePort()}`], timeScale: 1, picker: { plugins: [{ type: 'round-robin-picker' }] }, models: [{ name: 'm', target: 'm' }] };
  await withChild(bench('routing-server'), [JSON.stringify(args)], async (child, tmp) => {
    assert.match(leftovers(tmp).join(), /^tollgate-analytics-\w+$/);
    process.kill(-child.proc.pid!, 'SIGHUP');
    assert.equal(await ended(child), 'exit 0');
    assert.deepEqual(leftovers(tmp), []);
  });
});

for (const [how, end] of [
  ['the benchmark killed (its pipe ends)', (child: Child) => child.proc.stdin!.end()],
  // nginx itself takes SIGHUP for "reload the configuration" and went on serving.
  ['the terminal closed (SIGHUP to the group)', (child: Child) => process.kill(-child.proc.pid!, 'SIGHUP')],
  ['Ctrl-C (SIGINT to the group)', (child: Child) => process.kill(-child.proc.pid!, 'SIGINT')],
] as const) {
  test(`bench overhead's nginx, ${how}: stopped, its port released, its directory removed`, { timeout: 60_000, skip: !NGINX && 'nginx is not installed' }, async () => {
    await withChild(bench('overhead-roles'), ['nginx', String(await freePort())], async (child, tmp) => {
      const [dir] = leftovers(tmp);
      assert.match(dir, /^tollgate-nginx-/);
      const master = Number(readFileSync(join(tmp, dir, 'nginx.pid'), 'utf8'));
      assert.ok(await accepts(child.port));
      end(child);
      assert.equal(await ended(child), 'exit 0');
      assert.equal(alive(master), false, 'nginx still running');
      assert.equal(await accepts(child.port), false, 'the port still bound');
      assert.deepEqual(leftovers(tmp), []);
    });
  });
}
