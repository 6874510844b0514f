// Starting extproc-gateway-process.ts as a child process from a test, and stopping it.
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ExtprocGatewayArgs } from './extproc-gateway-process.js';
import { spawnUntilReady, stopGatewayChild } from './gateway-child.js';

const SCRIPT = fileURLToPath(new URL('./extproc-gateway-process.ts', import.meta.url));

export interface ExtprocChild {
  url: string;
  adminUrl: string;
  /** host:port of its ext_proc listener. */
  extproc: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

export async function startExtprocChild(args: ExtprocGatewayArgs, timeoutMs = 60_000): Promise<ExtprocChild> {
  const { child, ports } = await spawnUntilReady(SCRIPT, args, 'ext_proc gateway', /^READY (\d+) (\d+) (\d+)$/m, timeoutMs);
  return { url: `http://127.0.0.1:${ports[0]}`, adminUrl: `http://127.0.0.1:${ports[1]}`, extproc: `127.0.0.1:${ports[2]}`, child, stop: () => stopGatewayChild(child) };
}
