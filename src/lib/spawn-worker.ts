// Starting a worker thread from a module beside the caller: the compiled module directly; from TypeScript sources
// (tests under `node --import tsx`) through tsx's loader, because Node 20 does not carry --import hooks into workers,
// or from dist/ when the test runner has just built it (TOLLGATE_TEST_DIST=1, scripts/run-tests.mjs): a worker
// loading its ~500 modules through tsx's loader thread costs ~1.7 s of CPU, the built ones ~0.3 s.
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { builtUrl } from './package-root.js';

/**
 * @param callerUrl the caller's `import.meta.url`; the worker module sits in the same folder
 * @param name the worker module's file name without extension
 * @example const worker = spawnWorker(import.meta.url, 'sandbox-worker');
 */
export function spawnWorker(callerUrl: string, name: string, options: WorkerOptions = {}): Worker {
  const fromSource = callerUrl.endsWith('.ts');
  const entry = new URL(`./${name}${fromSource ? '.ts' : '.js'}`, callerUrl);
  if (!fromSource) return new Worker(entry, options);
  if (process.env.TOLLGATE_TEST_DIST === '1') return new Worker(builtUrl(entry), options);
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(boot, { ...options, eval: true });
}
