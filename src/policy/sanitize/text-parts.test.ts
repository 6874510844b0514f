import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Finding } from './finding.js';
import { PART_SEPARATOR, redactParts } from './text-parts.js';

/** A redacting finding over `[start, end)` of the joined parts. */
const at = (start: number, end: number, type = 'x'): Finding => ({ category: 'denylist', type, start, end, action: 'redact' });

test('findings in the joined text redact the parts they cover, across a join in each part', () => {
  assert.equal(PART_SEPARATOR, '\n');
  const parts = ['about project', 'falcon now', 'and more'];
  // 'project\nfalcon' is 6..20 of 'about project\nfalcon now\nand more'.
  const table: [string, Finding[], string[]][] = [
    ['across a join', [at(6, 20)], ['about [REDACTED:x]', '[REDACTED:x] now', 'and more']],
    ['within one part', [at(21, 24)], ['about project', 'falcon [REDACTED:x]', 'and more']],
    ['over the separator alone', [at(13, 14)], parts],
    ['over three parts', [at(6, 28)], ['about [REDACTED:x]', '[REDACTED:x]', '[REDACTED:x] more']],
    ['several, out of order', [at(25, 28, 'b'), at(0, 5, 'a')], ['[REDACTED:a] project', 'falcon now', '[REDACTED:b] more']],
    ['a blocking finding redacts nothing', [{ ...at(0, 5), action: 'block' }], parts],
  ];
  for (const [name, findings, expected] of table) assert.deepEqual(redactParts(parts, findings), expected, name);
  assert.deepEqual(redactParts(['one text'], [at(4, 8)]), ['one [REDACTED:x]']);
});
