import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { builtUrl, packageRoot } from './package-root.js';

test('builtUrl maps a source module to its compiled counterpart under dist/, and refuses what is not one', () => {
  const root = packageRoot();
  assert.equal(builtUrl(pathToFileURL(join(root, 'src/analytics/record-writer-worker.ts'))).href, pathToFileURL(join(root, 'dist/src/analytics/record-writer-worker.js')).href);
  assert.throws(() => builtUrl(new URL('file:///elsewhere/src/a.ts')), /not a source module of this package/);
  assert.throws(() => builtUrl(pathToFileURL(join(root, 'dist/src/a.js'))), /not a source module/);
});
