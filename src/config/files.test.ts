import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs, { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFiles, readManifestFiles } from './files.js';
import { ConfigError } from './manifest.js';

const POOL = 'apiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\nmetadata: { name: p }\nspec: { endpoints: ["http://127.0.0.1:9000"] }\n';

test('hidden files named like manifests are not read: an editor lock, a macOS resource fork, ..data', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-files-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'pools.yaml'), POOL);
  // Before: each failed the start (exit 2) and every reload.
  symlinkSync('alice@host.12345:1700000000', join(dir, '.#pools.yaml'));
  writeFileSync(join(dir, '._pools.yaml'), Buffer.from([0, 5, 22, 7, 0, 2, 0, 0]));
  assert.deepEqual(configFiles([dir]), [join(dir, 'pools.yaml')]);
  assert.equal(readManifestFiles([dir]).length, 1);
});

test('a file that is not UTF-8 is refused, naming it, instead of read with replacement characters', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-files-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'models.yaml');
  writeFileSync(file, Buffer.concat([Buffer.from(POOL.replace('name: p', 'name: caf')), Buffer.from([0xe9])]));
  assert.throws(() => readManifestFiles([file]), (err: unknown) => err instanceof ConfigError && err.problems[0] === `${file}: not UTF-8 text`);
});

test('a --config directory that cannot be listed is a configuration error naming it', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-files-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // As for a directory made unreadable (a root process is not refused). Before, Node's bare error: a reload took it
  // for the store failing, and retried it with backoff under that message.
  const refusing = t.mock.method(fs, 'readdirSync', () => {
    throw Object.assign(new Error(`EACCES: permission denied, scandir '${dir}'`), { code: 'EACCES' });
  });
  syncBuiltinESMExports();
  t.after(() => {
    refusing.mock.restore();
    syncBuiltinESMExports();
  });
  assert.throws(() => configFiles([dir]), (err: unknown) => err instanceof ConfigError && err.problems[0] === `${dir}: cannot read the directory: permission denied`);
});
