// Runs every *.test.ts under src/ and test/ with node:test through tsx. Node 20's --test does not expand
// globs itself, so the files are listed here; extra arguments (e.g. a file or --test-name-pattern) pass through.
//
// The unit tests under src/ run in a few processes, not one each: a process spends ~1.5 s loading tsx and the
// modules a test imports through its loader thread (kysely alone is 263 ES modules), which was three quarters of
// what the 145 unit files cost. Each file's tests stay in a suite named by its path, so its top-level hooks apply
// to it alone. The end-to-end files under test/ start servers, children and stores, and keep a process each.
//
// dist/ is built first (incrementally: seconds when nothing changed) and TOLLGATE_TEST_DIST=1 tells the tests so:
// the `tollgate` children they start run bin/tollgate.js and the worker threads run compiled modules, as installed,
// instead of loading the sources through tsx again in each (~2 s of CPU apiece, over a hundred of them).
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createInterface } from 'node:readline';
import { FailureLog } from './test-failures.mjs';

/** Each group must end within --test-timeout, which node:test applies to a whole file: ~25 s each on 2 cores. */
const UNIT_GROUPS = 4;

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
function unitGroups(dir, units) {
  const groups = Array.from({ length: UNIT_GROUPS }, () => []);
  units.forEach((file, i) => groups[i % UNIT_GROUPS].push(file));
  return groups.map((group, i) => {
    const path = join(dir, `unit-${i + 1}.test.mjs`);
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
  files = [...unitGroups(dir, find('src').sort()), ...find('test').sort()];
}
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=180000', ...args, ...files],
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
