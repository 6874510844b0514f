// The streaming guarantee: however the text is cut into chunks, what the client gets equals the whole text redacted
// (for items shorter than the holdback); blocks stop the stream; nothing released is revisited.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sanitizeModelResponseSpec } from '../../config/apim-kinds.js';
import { FakeSecrets } from './fake-secrets.js';
import { redact } from './redact.js';
import { Scanner } from './scanner.js';
import { StreamRedactor } from './stream-redactor.js';

const fake = new FakeSecrets(11);
const redacting = new Scanner(sanitizeModelResponseSpec.parse({}).filters);

/** Streams `text` in chunks of `size` through a fresh redactor; returns what the client saw. */
function stream(text: string, size: number, holdback = 200, scanner = redacting): { out: string; blocked: boolean } {
  const r = new StreamRedactor(scanner, holdback);
  let out = '';
  for (let i = 0; i < text.length; i += size) {
    const e = r.push(0, text.slice(i, i + size));
    if (e.blocked) return { out, blocked: true };
    out += e.text;
  }
  const e = r.flush(0);
  return { out: out + e.text, blocked: !!e.blocked };
}

const TEXT = `Sure! Your key is ${fake.make('openai_proj')} and the backup is ${fake.make('ghp')}; mail ops@acme-corp.com or call +44 20 7946 0958. Done.`;

describe('stream redaction', () => {
  test('every chunk size gives the whole-text redaction', () => {
    const whole = redact(TEXT, redacting.scan(TEXT));
    assert.ok(!whole.includes('sk-proj-') && whole.includes('[REDACTED:openaiKey]'));
    for (let size = 1; size <= 40; size++) assert.equal(stream(TEXT, size).out, whole, `chunks of ${size}`);
  });

  test('context released before the hold still counts (password: then the value later)', () => {
    const text = `${'x'.repeat(300)} password: Tr0ub4dor&3xyz! and more text after it ${'y'.repeat(300)}`;
    for (const size of [1, 7, 13]) assert.ok(stream(text, size).out.includes('password: [REDACTED:genericSecret]'), `chunks of ${size}`);
  });

  test('a private key block longer than the holdback is held until its END line', () => {
    const text = `Here it is:\n${fake.make('pem')}\nKeep it safe.`;
    const { out } = stream(text, 5, 50);
    assert.ok(!out.includes('BEGIN RSA') && out.includes('[REDACTED:privateKey]') && out.endsWith('Keep it safe.'));
  });

  test('a blocking filter stops the stream before the item is released', () => {
    const blocking = new Scanner(sanitizeModelResponseSpec.parse({ filters: { secrets: { action: 'block' } } }).filters);
    const { out, blocked } = stream(TEXT, 3, 200, blocking);
    assert.equal(blocked, true);
    assert.ok(!out.includes('sk-proj-'));
  });

  test('text is released once it is further back than the holdback', () => {
    const r = new StreamRedactor(redacting, 10);
    assert.equal(r.push(0, 'hello').text, '');
    assert.equal(r.push(0, ' wonderful world').text, 'hello wonde');
    assert.deepEqual(r.pending(), [0]);
    assert.equal(r.flush(0).text, 'rful world');
    assert.deepEqual(r.pending(), []);
  });

  test('choices are held separately', () => {
    const r = new StreamRedactor(redacting, 4);
    r.push(0, 'aaaaaa');
    r.push(1, 'bb');
    assert.equal(r.flush(1).text, 'bb');
    assert.equal(r.flush(0).text, 'aaaa');
  });
});

test('a hold that keeps growing (an unterminated private key) is rescanned only as it doubles, and still released whole and redacted', () => {
  let scans = 0;
  const counting = new Scanner(sanitizeModelResponseSpec.parse({}).filters);
  const scan = counting.scan.bind(counting);
  counting.scan = (text) => (scans++, scan(text));
  const key = `-----BEGIN PRIVATE KEY-----\n${'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC'.repeat(300)}\n-----END PRIVATE KEY-----`;
  const text = `intro ${key} outro`;
  const { out } = stream(text, 1, 200, counting);
  assert.equal(out, redact(text, redacting.scan(text)));
  assert.ok(out.includes('[REDACTED:privateKey]') && !out.includes('MIIEvQ'));
  // One scan per event until the key starts, then one each time the hold doubles: far fewer than the ~9,700 events.
  assert.ok(scans < 400, `${scans} scans for ${text.length} one-character events`);
});

