// Starting and stopping gateway-process.ts children (one replica each) from a test, with their stderr kept for failure messages.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { GatewayProcessArgs } from './gateway-process.js';

const SCRIPT = fileURLToPath(new URL('./gateway-process.ts', import.meta.url));

export interface GatewayChild {
  name: string;
  url: string;
  adminUrl: string;
  child: ChildProcess;
  /** What the child wrote to stderr so far (its warnings and errors). */
  stderr(): string;
}

/**
 * Spawns `script` (a .ts run through tsx) with its JSON arguments and resolves with the READY line's numbers once
 * it prints one matching `ready`; rejects (and kills it) when it exits first or after `timeoutMs`.
 */
export function spawnUntilReady(script: string, args: unknown, label: string, ready: RegExp, timeoutMs: number, env: NodeJS.ProcessEnv = {}): Promise<{ child: ChildProcess; ports: number[]; stderr: () => string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify(args)], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  return new Promise((resolve, reject) => {
    let out = '';
    const fail = (why: string) => {
      clearTimeout(timer);
      void stopGatewayChild(child);
      reject(new Error(`${label}: ${why}\n${err}`));
    };
    const timer = setTimeout(() => fail(`not ready after ${timeoutMs} ms`), timeoutMs);
    child.once('exit', (code, signal) => fail(`exited before READY (code ${code}, signal ${signal})`));
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = ready.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      resolve({ child, ports: m.slice(1).map(Number), stderr: () => err });
    });
  });
}

/** Spawns one replica (with `env` added to this process's) and resolves once it prints READY. */
export async function startGatewayChild(name: string, args: GatewayProcessArgs, timeoutMs = 60_000, env: NodeJS.ProcessEnv = {}): Promise<GatewayChild> {
  const { child, ports, stderr } = await spawnUntilReady(SCRIPT, args, `replica ${name}`, /^READY (\d+) (\d+)$/m, timeoutMs, env);
  return { name, url: `http://127.0.0.1:${ports[0]}`, adminUrl: `http://127.0.0.1:${ports[1]}`, child, stderr };
}

/** SIGTERM, then SIGKILL when it has not exited after `graceMs`. Resolves once it is gone. */
export async function stopGatewayChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
