import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MutationBuilder, diffHeaders, readHeaderMap } from './headers.js';

test('header maps: pseudo-headers apart, raw_value or value, repeated names joined as node:http joins them', () => {
  const r = readHeaderMap({
    headers: [
      { key: ':method', raw_value: Buffer.from('POST') },
      { key: ':path', value: '/v1/chat/completions?x=1' },
      { key: ':authority', raw_value: Buffer.from('gw.example') },
      { key: 'X-Api-Key', raw_value: Buffer.from('tg_k') },
      { key: 'accept', value: 'a' },
      { key: 'accept', value: 'b' },
      { key: 'cookie', value: 'a=1' },
      { key: 'cookie', value: 'b=2' },
      { key: 'set-cookie', value: 's=1' },
      { key: 'empty', value: '' },
    ],
  });
  assert.deepEqual(r.pseudo, { method: 'POST', path: '/v1/chat/completions?x=1', authority: 'gw.example' });
  assert.equal(r.headers['x-api-key'], 'tg_k');
  assert.equal(r.headers.accept, 'a, b');
  assert.equal(r.headers.cookie, 'a=1; b=2');
  assert.deepEqual(r.headers['set-cookie'], ['s=1']);
  assert.equal(r.headers.host, 'gw.example');
  assert.equal(r.headers.empty, '');
  assert.equal(r.raw, true);
  assert.equal(readHeaderMap({ headers: [{ key: ':path', value: '/' }] }).raw, false);
});

test('header names that are Object.prototype members read as the client sent them, as node:http reads them', () => {
  const r = readHeaderMap({
    headers: [
      { key: 'constructor', value: 'c' },
      { key: 'toString', value: 't' },
      { key: '__proto__', value: 'p' },
      { key: 'hasOwnProperty', value: 'h' },
    ],
  });
  assert.equal(r.headers.constructor, 'c');
  assert.equal(r.headers.tostring, 't');
  assert.equal(r.headers.hasownproperty, 'h');
  assert.equal(Object.getPrototypeOf(r.headers), null, 'a __proto__ header does not change what the headers inherit');
  assert.equal(r.headers['__proto__' as string], 'p');
});

test('answers use the field the request used', () => {
  const raw = new MutationBuilder(true).set('a', 'é').remove('b').build()!;
  assert.deepEqual(raw.set_headers![0].header, { key: 'a', raw_value: Buffer.from('é', 'latin1') });
  assert.equal(raw.set_headers![0].append_action, 2, 'overwrite, never append');
  assert.deepEqual(raw.remove_headers, ['b']);
  assert.deepEqual(new MutationBuilder(false).set('a', '1').build()!.set_headers![0].header, { key: 'a', value: '1' });
  assert.equal(new MutationBuilder(false).build(), undefined);
});

test('diffHeaders: only what changed; several values become one set and appends', () => {
  const m = new MutationBuilder(false);
  diffHeaders({ a: '1', b: '2', c: '3' }, { a: '1', b: 'two', d: 4, 'set-cookie': ['x=1', 'y=2'] }, m);
  const out = m.build()!;
  assert.deepEqual(
    out.set_headers!.map((o) => [o.header.key, o.header.value, o.append_action]),
    [['b', 'two', 2], ['d', '4', 2], ['set-cookie', 'x=1', 2], ['set-cookie', 'y=2', 0]],
  );
  assert.deepEqual(out.remove_headers, ['c']);
});
