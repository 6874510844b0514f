// Starting extproc-gateway-process.ts as a child process from a test, and stopping it.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ExtprocGatewayArgs } from './extproc-gateway-process.js';
import { stopGatewayChild } from './gateway-child.js';

const SCRIPT = fileURLToPath(new URL('./extproc-gateway-process.ts', import.meta.url));

export interface ExtprocChild {
  url: string;
  adminUrl: string;
  /** host:port of its ext_proc listener. */
  extproc: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

export function startExtprocChild(args: ExtprocGatewayArgs, timeoutMs = 60_000): Promise<ExtprocChild> {
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, JSON.stringify(args)], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  return new Promise((resolve, reject) => {
    let out = '';
    const fail = (why: string) => {
      clearTimeout(timer);
      void stopGatewayChild(child);
      reject(new Error(`ext_proc gateway: ${why}\n${err}`));
    };
    const timer = setTimeout(() => fail(`not ready after ${timeoutMs} ms`), timeoutMs);
    child.once('exit', (code, signal) => fail(`exited before READY (code ${code}, signal ${signal})`));
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /^READY (\d+) (\d+) (\d+)$/m.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      resolve({ url: `http://127.0.0.1:${m[1]}`, adminUrl: `http://127.0.0.1:${m[2]}`, extproc: `127.0.0.1:${m[3]}`, child, stop: () => stopGatewayChild(child) });
    });
  });
}
