// Runs every *.test.ts under src/ and test/ with node:test through tsx. Node 20's --test does not expand
// globs itself, so the files are listed here; extra arguments (e.g. a file or --test-name-pattern) pass through.
//
// Test files share processes: a process spends ~1.4 s of CPU loading tsx and the modules a test imports through
// its loader thread (kysely alone is 263 ES modules), which was three quarters of what the unit files cost and a
// third of the whole suite's CPU. The unit files under src/ run in a few processes; the end-to-end files under
// test/ four to a process (dealt out in turn), except a file whose comments say `// own process:` because it
// inspects process-wide state (open handles, threads, modules loaded). Each file's tests stay in a suite named by
// its path, so its top-level hooks apply to it alone, and its servers, children and stores are closed by its own
// hooks before the next file's start.
//
// dist/ is built first (incrementally: seconds when nothing changed) and TOLLGATE_TEST_DIST=1 tells the tests so:
// the `tollgate` children they start run bin/tollgate.js and the worker threads run compiled modules, as installed,
// instead of loading the sources through tsx again in each (~2 s of CPU apiece, over a hundred of them).
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createInterface } from 'node:readline';
import { FailureLog } from './test-failures.mjs';

/** Each group must end within --test-timeout, which node:test applies to a whole file: ~25 s each on 2 cores. */
const UNIT_GROUPS = 4;
/** End-to-end files per process: their groups took up to ~40 s on 2 cores. */
const E2E_PER_PROCESS = 4;
/** How many test processes run at once: most end-to-end tests wait on timers and sockets more than they compute. */
const CONCURRENCY = 3;

function find(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...find(path));
    else if (entry.name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

/** Files that import `units` (dealt out in turn, so one folder's slow files spread), each wrapped in a suite. */
function unitGroups(dir, units, count = UNIT_GROUPS, name = 'unit') {
  const groups = Array.from({ length: count }, () => []);
  units.forEach((file, i) => groups[i % count].push(file));
  return groups.map((group, i) => {
    const path = join(dir, `${name}-${i + 1}.test.mjs`);
    // A file that fails to load counts as a failed test (a suite's own error would leave "# fail 0" in the summary).
    const lines = group.map((file) => `describe(${JSON.stringify(file)}, () => import(${JSON.stringify(pathToFileURL(resolve(file)).href)}).catch(loadFailed));`);
    writeFileSync(path, [`import { describe, test } from 'node:test';`, `const loadFailed = (err) => test('loads', () => { throw err; });`, ...lines, ''].join('\n'));
    return path;
  });
}

const built = spawnSync(process.execPath, [createRequire(import.meta.url).resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
if (built.status !== 0) {
  console.error('run-tests: the build (tsc -p tsconfig.build.json) failed; the tests run the built CLI and workers');
  process.exit(built.status ?? 1);
}

const args = process.argv.slice(2);
let files = [];
let dir;
if (!args.some((a) => a.endsWith('.ts'))) {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-units-'));
  const ownProcess = (file) => /^\/\/ own process:/m.test(readFileSync(file, 'utf8'));
  const e2e = find('test').sort();
  const shared = e2e.filter((file) => !ownProcess(file));
  files = [
    ...unitGroups(dir, find('src').sort()),
    ...unitGroups(dir, shared, Math.ceil(shared.length / E2E_PER_PROCESS), 'e2e'),
    ...e2e.filter(ownProcess),
  ];
}
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${CONCURRENCY}`, '--test-timeout=180000', ...args, ...files],
  { stdio: ['inherit', 'pipe', 'inherit'], env: { ...process.env, TOLLGATE_TEST_DIST: '1' } },
);
// The report is passed on as it comes; the failed tests are named again just above the summary, where a CI log cut to
// its last lines still shows them (one failure among 3,000 tests was otherwise nowhere in what CI kept).
const failures = new FailureLog();
const lines = createInterface({ input: child.stdout, crlfDelay: Infinity });
lines.on('line', (line) => {
  for (const out of failures.line(line)) process.stdout.write(`${out}\n`);
});
const linesDone = new Promise((done) => lines.once('close', done));
const cleanUp = () => dir && rmSync(dir, { recursive: true, force: true });
process.on('SIGINT', () => child.kill('SIGINT'));
process.on('SIGTERM', () => child.kill('SIGTERM'));
child.on('exit', async (code, signal) => {
  await linesDone;
  for (const out of failures.end()) process.stdout.write(`${out}\n`);
  cleanUp();
  process.stdout.write('', () => process.exit(code ?? (signal ? 1 : 0)));
});
