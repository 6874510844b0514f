// What GET /v1/manifests shows of inline credentials, and that what it shows is refused when applied back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JsonObject } from '../store/index.js';
import { readApimDocuments } from './manifest-documents.js';
import { redactedPlaceholders, redactInlineSecrets } from './inline-secrets.js';

const V = 'apim.googleapis.com/v1';

/** Applying `spec` back as GET shows it: the field paths apply refuses for holding the placeholder. */
function refusedWhenAppliedBack(kind: string, spec: JsonObject): string[] {
  const doc = { apiVersion: V, kind, metadata: { name: 'shown' }, spec: redactInlineSecrets(kind, spec) };
  return readApimDocuments(JSON.stringify([doc]), 'body').problems.map((p) => p.path);
}

test('an AssignMessage\'s literal credentials set as query parameters or JSON fields are shown redacted, as its headers are; templates are shown', () => {
  const spec = {
    set: {
      headers: [{ name: 'authorization', value: 'Bearer sk-HEADER' }],
      queryParams: [
        { name: 'key', value: 'AIzaSy-QUERY-SECRET' },
        { name: 'api_key', value: 'QUERY-SECRET' },
        { name: 'access_token', value: '{kvm.token}' },
        { name: 'alt', value: 'json' },
      ],
      jsonFields: [
        { path: 'api_key', value: 'BODY-SECRET' },
        { path: 'auth.client_secret', value: 'NESTED-SECRET' },
        { path: 'auth.token', value: 'Bearer {kvm.token}' },
        { path: 'user', value: 'ada' },
        { path: 'max_tokens', value: 256 },
      ],
    },
  };
  const shown = redactInlineSecrets('AssignMessage', spec);
  // Before: the query parameters and JSON fields were shown as stored.
  assert.deepEqual(shown.set, {
    headers: [{ name: 'authorization', value: '(redacted)' }],
    queryParams: [
      { name: 'key', value: '(redacted)' },
      { name: 'api_key', value: '(redacted)' },
      { name: 'access_token', value: '{kvm.token}' },
      { name: 'alt', value: 'json' },
    ],
    jsonFields: [
      { path: 'api_key', value: '(redacted)' },
      { path: 'auth.client_secret', value: '(redacted)' },
      { path: 'auth.token', value: 'Bearer {kvm.token}' },
      { path: 'user', value: 'ada' },
      { path: 'max_tokens', value: 256 },
    ],
  });
  assert.ok(JSON.stringify(spec).includes('QUERY-SECRET'), 'the stored spec is left as it is');
  assert.deepEqual(refusedWhenAppliedBack('AssignMessage', spec), [
    'spec.set.headers.0.value',
    'spec.set.queryParams.0.value',
    'spec.set.queryParams.1.value',
    'spec.set.jsonFields.0.value',
    'spec.set.jsonFields.1.value',
  ]);
});

test('a callout URL\'s literal credential query parameters are shown redacted, the rest of it as written', () => {
  const cases: [url: string, shown: string][] = [
    ['https://api.example.com/check?access_token=URL-SECRET', 'https://api.example.com/check?access_token=(redacted)'],
    ['https://api.example.com/u/{client_id}?alt=json&key=AIza-1&api%5Fkey=x+y#top', 'https://api.example.com/u/{client_id}?alt=json&key=(redacted)&api%5Fkey=(redacted)#top'],
    // A template names where the credential is; a fragment is not the query.
    ['https://api.example.com/check?token={kvm.token}&q=1', 'https://api.example.com/check?token={kvm.token}&q=1'],
    ['https://api.example.com/check#key=abc', 'https://api.example.com/check#key=abc'],
    ['https://api.example.com/check?flag&keep=1', 'https://api.example.com/check?flag&keep=1'],
  ];
  for (const [url, expected] of cases) {
    const spec = { request: { url, headers: {} } };
    assert.equal((redactInlineSecrets('ServiceCallout', spec).request as JsonObject).url, expected, url);
    assert.deepEqual(refusedWhenAppliedBack('ServiceCallout', spec), expected === url ? [] : ['spec.request.url'], url);
  }
  // Spelt %28redacted%29, the placeholder is refused all the same.
  assert.deepEqual(redactedPlaceholders('ServiceCallout', { request: { url: 'https://a.example.com/?key=%28redacted%29' } }), ['spec.request.url']);
});
