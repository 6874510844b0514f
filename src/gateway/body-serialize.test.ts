import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { serializeBody } from './body-serialize.js';

/** What tollgate does to a body it changes: parse the client's bytes, change fields, serialize again. */
function changed(raw: string, change: (body: Record<string, unknown>) => void): string {
  const body = JSON.parse(raw) as Record<string, unknown>;
  change(body);
  return serializeBody(body, Buffer.from(raw)).toString();
}

test('integers beyond 2^53 the change did not touch go upstream as the client wrote them', () => {
  const raw = '{"model":"m","seed":12345678901234567890,"metadata":{"ids":[-9007199254740993,1,18446744073709551615]},"stream":true}';
  const out = changed(raw, (b) => {
    b.model = 'target';
    b.stream_options = { include_usage: true };
  });
  assert.equal(out, '{"model":"target","seed":12345678901234567890,"metadata":{"ids":[-9007199254740993,1,18446744073709551615]},"stream":true,"stream_options":{"include_usage":true}}');
});

test('digits inside strings, fractions and exponents are left to JSON; a changed long integer is the new value', () => {
  const raw = '{"model":"m","prompt":"call 12345678901234567890 \\" 98765432109876543210","t":0.12345678901234567890,"e":1234567890123456789e2,"seed":12345678901234567890}';
  const out = JSON.parse(changed(raw, (b) => (b.seed = 7))) as Record<string, unknown>;
  assert.equal(out.prompt, 'call 12345678901234567890 " 98765432109876543210');
  assert.equal(out.t, 0.12345678901234568);
  assert.equal(out.e, Number('1234567890123456789e2'));
  assert.equal(out.seed, 7);
});

test('a field named __proto__ stays a field; bytes that are not the body leave plain JSON', () => {
  const raw = '{"model":"m","__proto__":{"seed":12345678901234567890}}';
  assert.equal(changed(raw, () => {}), raw);
  const body = { model: 'm', seed: 12345678901234567000 };
  assert.equal(serializeBody(body, Buffer.from('not json 12345678901234567890')).toString(), JSON.stringify(body));
  assert.equal(serializeBody(body, undefined).toString(), JSON.stringify(body));
});

test('any JSON value survives the round trip: the same value as JSON.stringify gives, and the same text when nothing is long', () => {
  fc.assert(
    fc.property(fc.jsonValue(), fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }), (value, big) => {
      const raw = JSON.stringify({ value, big: 0 }).replace('"big":0', `"big":${big}`);
      const body = JSON.parse(raw) as Record<string, unknown>;
      const out = serializeBody(body, Buffer.from(raw)).toString();
      assert.deepEqual(JSON.parse(out), JSON.parse(JSON.stringify(body)));
      // The long integer keeps its digits.
      assert.ok(out.endsWith(`"big":${big}}`), out);
    }),
    { numRuns: 300 },
  );
});

test("a body that starts with a byte order mark keeps the client's long integers too", () => {
  const raw = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"model":"m","seed":12345678901234567890}')]);
  const body = JSON.parse(raw.subarray(3).toString()) as { model: string };
  body.model = 'other';
  assert.equal(serializeBody(body, raw).toString(), '{"model":"other","seed":12345678901234567890}');
});
