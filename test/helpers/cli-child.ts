// `tollgate ARGS` as a child process with `cwd` as its working directory (where serve's and demo's default files go):
// bin/tollgate.js itself when the test runner has just built dist/ (TOLLGATE_TEST_DIST=1, scripts/run-tests.mjs),
// else the same main() from source through tsx. TOLLGATE_ADMIN_TOKEN, TOLLGATE_LOG_LEVEL, TOLLGATE_DB and TOLLGATE_REDIS
// come only from `env`, never from the environment the tests run in.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/tollgate.js', import.meta.url));
const MAIN = new URL('../../src/cli/main.ts', import.meta.url).href;

export function spawnCli(args: string[], cwd: string, env: Record<string, string> = {}): ChildProcess {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  delete childEnv.TOLLGATE_ADMIN_TOKEN;
  delete childEnv.TOLLGATE_LOG_LEVEL;
  delete childEnv.TOLLGATE_DB;
  delete childEnv.TOLLGATE_REDIS;
  const options = { env: { ...childEnv, ...env }, stdio: ['ignore', 'pipe', 'pipe'] as ('ignore' | 'pipe')[] };
  if (process.env.TOLLGATE_TEST_DIST === '1') return spawn(process.execPath, [BIN, ...args], { ...options, cwd });
  const script = [
    `process.chdir(${JSON.stringify(cwd)});`,
    `import(${JSON.stringify(MAIN)}).then((m) => m.main(${JSON.stringify(args)})).then(`,
    '  (code) => { process.exitCode = code; },',
    "  (err) => { console.error('tollgate: ' + (err?.message ?? err)); process.exit(1); });",
  ].join('\n');
  // tsx is resolved from the checkout; the script moves to `cwd` before the CLI starts.
  return spawn(process.execPath, ['--import', 'tsx', '-e', script], { ...options, cwd: ROOT });
}
