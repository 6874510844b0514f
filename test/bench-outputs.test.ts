// A benchmark whose results cannot be written is refused before it measures (exit 2), not after minutes of it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { refusal, tempDir } from './helpers/cli-run.js';

/** A directory that cannot be made, even by root: its parent is a file. */
async function unwritable(): Promise<{ dir: string; under: string }> {
  const dir = await tempDir();
  await writeFile(join(dir, 'a-file'), '');
  return { dir, under: join(dir, 'a-file', 'results') };
}

for (const args of [
  ['bench', 'overhead', '--rounds', '1', '--duration', '1'],
  ['bench', 'routing', '--quick'],
  ['bench', 'decision'],
  ['bench', 'sanitize'],
  ['bench', 'semantic-cache'],
]) {
  test(`${args.slice(0, 2).join(' ')} with results it cannot write is refused before it measures`, async () => {
    const { dir, under } = await unwritable();
    const file = join(under, 'results.json');
    const lines = await refusal([...args, '--json', file], dir);
    assert.ok(lines.join('\n').includes(`cannot write the results to ${file}`), lines.join('\n'));
  });
}

test('bench overhead checks its chart and its ext_proc comparison too', async () => {
  const { dir, under } = await unwritable();
  const svg = join(under, 'o.svg');
  const lines = await refusal(['bench', 'overhead', '--rounds', '1', '--duration', '1', '--json', join(dir, 'o.json'), '--svg', svg], dir);
  assert.ok(lines.join('\n').includes(`cannot write the results to ${svg}`), lines.join('\n'));
});

test('bench overhead with a --redis it cannot use is refused before it measures', async () => {
  const dir = await tempDir();
  const lines = await refusal(['bench', 'overhead', '--rounds', '1', '--duration', '1', '--json', join(dir, 'o.json'), '--svg', join(dir, 'o.svg'), '--redis', 'redis+cluster://:s3cret@a:1?tls=yes'], dir);
  assert.match(lines.join('\n'), /--redis: redis\+cluster:\/\/\.\.\.: unknown parameter "tls" \(it takes keyPrefix\)/);
  assert.doesNotMatch(lines.join('\n'), /s3cret/);
});
