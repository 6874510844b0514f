// What the CLI tests share: `tollgate` children run from source (helpers/cli-child.ts), each killed and its temporary
// directory removed after the file's tests, and the one-connection requests they are probed with.
import { after } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/lib/ports.js';
import { waitFor } from '../../src/sim/testing.js';
import { spawnCli } from './cli-child.js';
import { poolAndModelYaml } from './manifests.js';
/** Generous bounds against a hung child, not measurements: a cold tsx start on a busy 2-core machine takes seconds. */
export const START_MS = 60_000;
export const EXIT_MS = 30_000;

const children = new Set<ChildProcess>();
const dirs: string[] = [];

after(async () => {
  await Promise.all([...children].map((c) => kill(c)));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tollgate-cli-'));
  dirs.push(dir);
  return dir;
}

export interface Cli {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * The child's exit, once its output has been read to the end, or a second after the exit at most (a process it started
 * may hold the output open): the exit is what is waited for, the wait for the rest of its output is bounded.
 */
function outputEnd(child: ChildProcess): Promise<unknown[]> {
  const ended = (stream: NodeJS.ReadableStream) => new Promise<void>((resolve) => stream.once('close', resolve));
  const output = Promise.all([ended(child.stdout!), ended(child.stderr!)]);
  return once(child, 'exit').then(async (exit) => {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([output, new Promise<void>((resolve) => (timer = setTimeout(resolve, 1000)))]);
    clearTimeout(timer);
    return exit;
  });
}

/** Runs `tollgate ARGS` from source in `cwd` (helpers/cli-child.ts); TOLLGATE_ADMIN_TOKEN and TOLLGATE_LOG_LEVEL only from `env`. */
export function runCli(args: string[], cwd: string, env: Record<string, string> = {}): Cli {
  const child = spawnCli(args, cwd, env);
  children.add(child);
  const cli: Cli = {
    child,
    stdout: '',
    stderr: '',
    // Its output read to the end too: 'exit' can come before the last of stderr (a refusal's one line read as '').
    exited: outputEnd(child).then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null })),
  };
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (cli.stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (cli.stderr += d));
  return cli;
}

/** Runs a `tollgate` command that must refuse to start: exit code 2, nothing served, no stack; the lines it printed on stderr. */
export async function refusal(args: string[], cwd: string, env: Record<string, string> = {}): Promise<string[]> {
  const cli = runCli(args, cwd, env);
  try {
    assert.equal(await exitCode(cli), 2, cli.stderr);
    assert.doesNotMatch(cli.stdout, /tollgate is serving/);
    assert.doesNotMatch(cli.stderr, /^\s+at /m);
    return cli.stderr.trimEnd().split('\n');
  } finally {
    await kill(cli.child);
  }
}

/** The exit code, or a failure naming what the child printed when it has not exited within EXIT_MS. */
export async function exitCode(cli: Cli): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running after ${EXIT_MS} ms\nstdout: ${cli.stdout}\nstderr: ${cli.stderr}`)), EXIT_MS);
  });
  try {
    const { code, signal } = await Promise.race([cli.exited, timeout]);
    assert.equal(signal, null, `killed by ${signal}\nstderr: ${cli.stderr}`);
    return code;
  } finally {
    clearTimeout(timer);
  }
}

export async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }
  children.delete(child);
}

export async function untilPrinted(cli: Cli, what: RegExp, label: string): Promise<void> {
  await waitFor(
    () => {
      if (cli.child.exitCode !== null) throw new Error(`${label}: exited with ${cli.child.exitCode} first\nstdout: ${cli.stdout}\nstderr: ${cli.stderr}`);
      return what.test(cli.stdout);
    },
    START_MS,
    `${label} (stdout: ${cli.stdout} stderr: ${cli.stderr})`,
    20,
  );
}

/** Distinct free ports (freePort() may hand out a number twice once the first is released). */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

export type Outcome = { status: number; body: string } | { error: string };

/** One request on a connection of its own (no keep-alive pool), so "new connection" means a new connection. */
export function send(url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = request(url, { method: init.method ?? 'GET', headers: init.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
      res.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    req.end(init.body);
  });
}

export function statusOf(o: Outcome): number | string {
  return 'status' in o ? o.status : o.error;
}

export const chat = (model: string, headers: Record<string, string> = {}) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify({ model, messages: [{ role: 'user', content: 'Hello!' }], max_tokens: 4 }),
});

/** A non-loopback IPv4 address of this machine, if it has one. */
export const EXTERNAL_IPV4 = Object.values(networkInterfaces())
  .flat()
  .find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address;
export const NO_EXTERNAL = EXTERNAL_IPV4 === undefined ? 'this machine has no non-loopback IPv4 address to connect through' : false;

/** Starts `serve` on a stub's pool with `env`, resolving once it logs that it serves. */
export async function serveWith(env: Record<string, string>): Promise<{ cli: Cli; port: number; adminPort: number }> {
  const dir = await tempDir();
  const file = join(dir, 'gateway.yaml');
  await writeFile(file, poolAndModelYaml('http://127.0.0.1:9'));
  const [port, adminPort] = await freePorts(2);
  const cli = runCli(['serve', '--config', file, '--port', String(port), '--admin-port', String(adminPort), '--db', `sqlite:${join(dir, 't.db')}`], dir, env);
  await untilPrinted(cli, /tollgate is serving/, 'serve');
  return { cli, port, adminPort };
}
