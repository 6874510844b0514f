// `tollgate ARGS` as a child process, as bin/tollgate.js runs it but from source (through tsx), with `cwd` as its
// working directory (where serve's and demo's default files go). TOLLGATE_ADMIN_TOKEN and TOLLGATE_LOG_LEVEL come
// only from `env`, never from the environment the tests run in.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = new URL('../../src/cli/main.ts', import.meta.url).href;

export function spawnCli(args: string[], cwd: string, env: Record<string, string> = {}): ChildProcess {
  const script = [
    `process.chdir(${JSON.stringify(cwd)});`,
    `import(${JSON.stringify(MAIN)}).then((m) => m.main(${JSON.stringify(args)})).then(`,
    '  (code) => { process.exitCode = code; },',
    "  (err) => { console.error('tollgate: ' + (err?.message ?? err)); process.exit(1); });",
  ].join('\n');
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  delete childEnv.TOLLGATE_ADMIN_TOKEN;
  delete childEnv.TOLLGATE_LOG_LEVEL;
  // tsx is resolved from the checkout; the script moves to `cwd` before the CLI starts.
  return spawn(process.execPath, ['--import', 'tsx', '-e', script], { cwd: ROOT, env: { ...childEnv, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}
