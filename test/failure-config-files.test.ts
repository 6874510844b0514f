// Hostile --config files on a running gateway: an oversized file, a YAML alias bomb, a symlink loop, a FIFO. Each
// reload is refused with a logged reason, the last good configuration keeps serving, and the process survives.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { request } from 'undici';
import { ConfigError } from '../src/config/manifest.js';
import { MAX_CONFIG_FILE_BYTES, readManifestFiles } from '../src/config/files.js';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { waitFor } from '../src/sim/testing.js';
import { json, startStub, type Stub } from './helpers/stub-upstream.js';
import { poolAndModelYaml } from './helpers/manifests.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FILES = new URL('../src/config/files.ts', import.meta.url).href;

/** A valid InferencePool whose endpoint list makes the file `bytes` long (parsing it costs ~60x that in memory). */
function hugePool(bytes: number): string {
  const head = 'apiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\nmetadata: { name: huge }\nspec:\n  endpoints:\n';
  const item = '  - "http://127.0.0.1:9"\n';
  return head + item.repeat(Math.ceil(bytes / item.length));
}

describe('oversized manifest files', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-failure-config-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('a file over the limit is a ConfigError naming it, found without parsing it', () => {
    const file = join(dir, 'huge.yaml');
    writeFileSync(file, hugePool(3 * MAX_CONFIG_FILE_BYTES));
    const t = performance.now();
    // Before the fix this parsed (seconds, hundreds of MB; at 100 MB the process died of heap exhaustion) and succeeded.
    assert.throws(() => readManifestFiles([file]), (err: unknown) => err instanceof ConfigError && /huge\.yaml: larger than \d+ bytes/.test(err.problems[0]));
    assert.ok(performance.now() - t < 1000, 'refused at once');
  });

  test('a FIFO named like a manifest is refused, not read (reading one blocks the whole process)', { skip: process.platform === 'win32' }, () => {
    const fifo = join(dir, 'pipe.yaml');
    execFileSync('mkfifo', [fifo]);
    try {
      // In a child, as before the fix the read never returned (no writer ever comes) and blocked its event loop.
      const script = `import(${JSON.stringify(FILES)}).then((m) => { try { m.readManifestFiles([${JSON.stringify(dir)}]); console.log('read'); } catch (e) { console.log(e.problems?.join('\\n') ?? String(e)); } })`;
      const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: ROOT, timeout: 30_000, encoding: 'utf8' });
      assert.equal(r.signal, null, 'the read returned (not killed after 30 s)');
      assert.match(r.stdout, /pipe\.yaml: not a regular file/);
    } finally {
      unlinkSync(fifo);
    }
  });
});

describe('a running gateway given hostile config files', () => {
  let dir: string;
  let stub: Stub;
  let gw: Gateway;
  const logs: Array<{ msg?: string; problems?: string[] }> = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-failure-config-gw-'));
    stub = await startStub(async (r) => json(r.res, 200, { model: r.body?.model }));
    writeFileSync(join(dir, 'config.yaml'), poolAndModelYaml(stub.url, 'good', 'model'));
    const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
    gw = await startGateway({ configPaths: [dir], port: 0, adminPort: 0, host: '127.0.0.1', logger });
  });
  after(async () => {
    await gw?.close();
    await stub?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const ask = async (model: string) => {
    const res = await request(`${gw.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model, messages: [{ role: 'user', content: 'x' }] }) });
    await res.body.text();
    return res.statusCode;
  };

  /** Writes `name`, waits for the rejection naming `expected`, removes it, and checks the good config still serves. */
  async function refused(name: string, write: (path: string) => void, expected: RegExp): Promise<void> {
    const path = join(dir, name);
    const seen = logs.length;
    write(path);
    try {
      await waitFor(
        () => logs.slice(seen).some((l) => l.msg?.includes('configuration change rejected') && l.problems?.some((p) => expected.test(p))),
        20_000,
        `the rejection of ${name} (${expected}) to be logged; logs: ${JSON.stringify(logs.slice(seen)).slice(0, 500)}`,
        50,
      );
      assert.equal(await ask('good'), 200, `${name}: the last good configuration serves`);
    } finally {
      rmSync(path, { force: true });
    }
  }

  test('an oversized file: refused with a reason, the last good configuration serves', { timeout: 60_000 }, async () => {
    assert.equal(await ask('good'), 200);
    await refused('huge.yaml', (p) => writeFileSync(p, hugePool(3 * MAX_CONFIG_FILE_BYTES)), /huge\.yaml: larger than/);
  });

  test('a YAML alias bomb: refused with a reason', async () => {
    const bomb = ['a: &a [x,x,x,x,x,x,x,x,x]', 'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]', 'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]', 'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]', 'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]', 'f: [*e,*e,*e,*e,*e,*e,*e,*e,*e]'].join('\n');
    await refused('bomb.yaml', (p) => writeFileSync(p, bomb), /bomb\.yaml document 0: YAML: Excessive alias count/);
  });

  test('a symlink loop named like a manifest: refused with a reason', async () => {
    await refused('loop.yaml', (p) => symlinkSync(p, p), /loop\.yaml: .*(ELOOP|too many symbolic links)/i);
  });

  test('after all that, a valid change still applies', async () => {
    writeFileSync(join(dir, 'config.yaml'), poolAndModelYaml(stub.url, 'better', 'model'));
    await waitFor(async () => (await ask('better')) === 200, 10_000, 'the valid change to apply', 50);
  });
});
