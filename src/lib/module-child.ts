// Node's arguments for running a module of this package in a child process (the crash, cut and lock children of the
// tests): the compiled module when the test runner has just built dist/ (TOLLGATE_TEST_DIST=1, scripts/run-tests.mjs),
// else the source through tsx. A child loading its modules through tsx spends seconds of CPU before its first line
// runs; on a loaded CI host two such starts took most of a crash test's time limit.
import { fileURLToPath } from 'node:url';
import { builtUrl } from './package-root.js';

/** @example spawn(process.execPath, [...moduleArgs(new URL('./child.ts', import.meta.url)), ...childArgs]) */
export function moduleArgs(source: URL): string[] {
  if (!source.href.endsWith('.ts')) return [fileURLToPath(source)];
  if (process.env.TOLLGATE_TEST_DIST === '1') return [fileURLToPath(builtUrl(source))];
  return ['--import', 'tsx', fileURLToPath(source)];
}
