// Starting a sandbox worker: the compiled module directly; from TypeScript sources (tests under `node --import tsx`)
// through tsx's loader, because Node 20 does not carry --import hooks into worker threads.
import { Worker } from 'node:worker_threads';

export function spawnSandboxWorker(): Worker {
  const fromSource = import.meta.url.endsWith('.ts');
  const entry = new URL(fromSource ? './sandbox-worker.ts' : './sandbox-worker.js', import.meta.url);
  if (!fromSource) return new Worker(entry);
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(boot, { eval: true });
}
