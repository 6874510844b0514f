// Tool-call arguments scanned as JSON text: escapes read as what they stand for, redactions that leave JSON a client parses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sanitizeModelResponseSpec } from '../../../config/apim-kinds.js';
import { redact } from '../../sanitize/redact.js';
import { Scanner } from '../../sanitize/scanner.js';
import { jsonTextScanner } from './json-text.js';

const scanner = new Scanner(sanitizeModelResponseSpec.parse({ filters: { secrets: { action: 'redact' }, sensitiveData: { action: 'redact' }, maliciousUri: { action: 'block' } } }).filters);
const json = jsonTextScanner(scanner);
const KEY = 'AKIAIOSFODNN7EXAMPLQ';

/** The arguments as the policy leaves them, and what a client parses them to. */
function redacted(args: unknown): { text: string; value: unknown } {
  const written = JSON.stringify(args);
  const text = redact(written, json.scan(written));
  return { text, value: JSON.parse(text) };
}

test('a redaction stops at the quote that ends its string: the arguments still parse', () => {
  // As written, `-p(\S{4,})` takes `hunter2"}`: redacting that left `{"command":"mysql -u root -p[REDACTED:…]`.
  assert.deepEqual(redacted({ command: 'mysql -u root -phunter2' }).value, { command: 'mysql -u root -p[REDACTED:genericSecret]' });
  assert.deepEqual(redacted({ command: 'deploy --password=hunter2', env: 'prod' }).value, { command: 'deploy --password=[REDACTED:genericSecret]', env: 'prod' });
});

test('escapes are read as the characters they stand for', () => {
  // `\nAKIA…` as written has no word boundary before the key (`n` is a word character): it went unseen.
  assert.deepEqual(redacted({ script: `echo hi\n${KEY}` }).value, { script: 'echo hi\n[REDACTED:awsAccessKey]' });
  // An escaped quote is part of the string: a redaction may take it, the string still ends where it did.
  assert.deepEqual(redacted({ note: 'password: "hunter22"' }).value, { note: 'password: "[REDACTED:genericSecret]"' });
  // \u escapes: the finding maps back to the text as written.
  const written = `{"mail":"ops\\u0040acme-corp.com","k":"${KEY}"}`;
  assert.equal(redact(written, json.scan(written)), '{"mail":"[REDACTED:email]","k":"[REDACTED:awsAccessKey]"}');
});

test('a fragment ending inside an escape, and a block, are read too', () => {
  assert.deepEqual(json.scan('{"a":"x\\'), []);
  const blocked = json.scan('{"url":"http://45.33.32.156/x.exe"}');
  assert.equal(blocked[0]?.action, 'block');
});
