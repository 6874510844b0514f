// Starting benchmark participants as child processes (so the load generator does not share their event loop),
// each announcing "READY <port>" on stdout, and stopping them all at the end.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface Child {
  port: number;
  /** Lines the process printed before READY (e.g. API keys it created for the load). */
  lines: string[];
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** Runs `script` (a .ts under tsx, a .js from dist: the caller's own runtime is reused; it ends with serveUntilStopped) and waits for READY. */
export function startChild(script: string, args: string[], timeoutMs = 30_000): Promise<Child> {
  // stdin stays open for the child's life: it ends when this process does, and the child stops (bench/child.ts).
  const proc = spawn(process.execPath, [...process.execArgv, script, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  return waitReady(proc, timeoutMs, `${script} ${args.join(' ')}`);
}

export function waitReady(proc: ChildProcess, timeoutMs: number, what: string): Promise<Child> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${what} did not start within ${timeoutMs} ms`));
    }, timeoutMs);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with code ${code} before it was ready`));
    });
    const before: string[] = [];
    const lines = createInterface({ input: proc.stdout! });
    lines.on('line', (line) => {
      const m = /^READY (\d+)/.exec(line);
      if (!m) {
        before.push(line);
        return;
      }
      clearTimeout(timer);
      proc.removeAllListeners('exit');
      resolve({ port: Number(m[1]), lines: before, proc, stop: () => stopProcess(proc) });
    });
  });
}

/** The API keys a benchmark child printed (`KEYS a,b,...`) for the load to use. */
export const keysOf = (c: Child): string[] => c.lines.find((l) => l.startsWith('KEYS '))?.slice(5).split(',') ?? [];

export function stopProcess(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    proc.kill('SIGTERM');
  });
}
