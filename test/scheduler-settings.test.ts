// GatewaySettings.scheduler timings are checked at load: a scrape interval or staleness limit that would make healthy
// endpoints stale (or scrape back to back) is a configuration error naming the field, not 503s at run time.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseManifests } from '../src/config/manifest.js';
import { DEFAULT_SETTINGS } from '../src/config/settings.js';

function problems(scheduler: string): string[] {
  const text = `apiVersion: tollgate.dev/v1alpha1
kind: GatewaySettings
metadata: { name: settings }
spec: { scheduler: ${scheduler} }
`;
  try {
    parseManifests(text, 'settings.yaml');
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems;
  }
}

describe('GatewaySettings.scheduler timings', () => {
  test('the documented defaults are valid', () => {
    assert.deepEqual([DEFAULT_SETTINGS.scheduler.scrapeInterval, DEFAULT_SETTINGS.scheduler.staleAfter], [50, 2000]);
    assert.deepEqual(problems('{}'), []);
    assert.deepEqual(problems('{ scrapeInterval: 1s, staleAfter: 2s }'), []);
  });

  test('staleAfter under two scrape intervals is refused, naming the field', () => {
    for (const bad of ['{ scrapeInterval: 3s }', '{ scrapeInterval: 2s, staleAfter: 2s }', '{ scrapeInterval: 1s, staleAfter: 1500ms }']) {
      const found = problems(bad);
      assert.equal(found.length, 1, bad);
      assert.match(found[0], /^settings\.yaml document 0 \(GatewaySettings\/settings\): spec\.scheduler\.staleAfter: must be at least twice scrapeInterval/, bad);
    }
  });

  test('a zero (or sub-millisecond) scrape interval or staleness limit is refused', () => {
    assert.ok(problems('{ scrapeInterval: 0s }').some((p) => /spec\.scheduler\.scrapeInterval: must be at least 1ms/.test(p)));
    assert.ok(problems('{ scrapeInterval: 0.001ms }').some((p) => /spec\.scheduler\.scrapeInterval: must be at least 1ms/.test(p)));
    assert.ok(problems('{ staleAfter: 0ms }').some((p) => /spec\.scheduler\.staleAfter: must be at least 1ms/.test(p)));
  });
});
