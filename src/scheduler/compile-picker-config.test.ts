import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { EndpointPickerConfigSpec } from '../config/inference-kinds.js';
import { compilePickerConfig, PickerConfigError, pickerConfigProblems } from './compile-picker-config.js';
import { DEFAULT_PICKER_CONFIG } from './default-picker-config.js';
import { PluginRegistry, registerBuiltins } from './plugin-registry.js';
import { deps } from './testing.js';

const registry = registerBuiltins(new PluginRegistry());
const compile = (spec: EndpointPickerConfigSpec) => compilePickerConfig(spec, { registry, deps: deps() });

function problems(spec: EndpointPickerConfigSpec): string[] {
  try {
    compile(spec);
  } catch (err) {
    assert.ok(err instanceof PickerConfigError);
    return err.problems;
  }
  assert.fail('expected a PickerConfigError');
}

describe('compilePickerConfig', () => {
  test('the default profile: always-on filters first, weighted scorers, max-score picker', () => {
    assert.deepEqual(compile(DEFAULT_PICKER_CONFIG).describe(), {
      filters: [
        { name: 'healthy-filter', type: 'healthy-filter' },
        { name: 'subset-filter', type: 'subset-filter' },
      ],
      scorers: [
        { name: 'queue-scorer', type: 'queue-scorer', weight: 3 },
        { name: 'least-requests-scorer', type: 'least-requests-scorer', weight: 1 },
        { name: 'kv-cache-utilization-scorer', type: 'kv-cache-utilization-scorer', weight: 2 },
        { name: 'prefix-cache-scorer', type: 'prefix-cache-scorer', weight: 4 },
        { name: 'lora-affinity-scorer', type: 'lora-affinity-scorer', weight: 6 },
      ],
      picker: { name: 'max-score-picker', type: 'max-score-picker' },
    });
  });

  test('without profiles every plugin runs, scorers at weight 1; one type may be configured twice', () => {
    const p = compile({
      plugins: [
        { type: 'low-queue-filter', parameters: { queueThreshold: 4 } },
        { type: 'prefix-cache-scorer', name: 'short-blocks', parameters: { blockSize: 4 } },
        { type: 'prefix-cache-scorer', name: 'long-blocks', parameters: { blockSize: 64 } },
      ],
    }).describe();
    assert.deepEqual(p.filters.map((f) => f.name), ['healthy-filter', 'subset-filter', 'low-queue-filter']);
    assert.deepEqual(p.scorers, [
      { name: 'short-blocks', type: 'prefix-cache-scorer', weight: 1 },
      { name: 'long-blocks', type: 'prefix-cache-scorer', weight: 1 },
    ]);
    assert.equal(p.picker.type, 'max-score-picker');
  });

  test('a profile uses only the plugins it names, and may place the always-on filters itself', () => {
    const p = compile({
      plugins: [{ type: 'subset-filter' }, { type: 'queue-scorer' }, { type: 'kv-cache-utilization-scorer' }, { type: 'random-picker' }],
      schedulingProfiles: [{ name: 'p', plugins: [{ pluginRef: 'subset-filter' }, { pluginRef: 'queue-scorer', weight: 5 }, { pluginRef: 'random-picker' }] }],
    }).describe();
    assert.deepEqual(p.filters.map((f) => f.name), ['healthy-filter', 'subset-filter']);
    assert.deepEqual(p.scorers, [{ name: 'queue-scorer', type: 'queue-scorer', weight: 5 }]);
    assert.equal(p.picker.type, 'random-picker');
  });

  test('an unknown type names the plugin and the type', () => {
    assert.deepEqual(problems({ plugins: [{ type: 'magic-scorer', name: 'm' }] }), [
      `plugins[0]: plugin "m" has unknown type "magic-scorer" (known: ${registry.types().join(', ')})`,
    ]);
  });

  test('a duplicate name names both types', () => {
    assert.deepEqual(problems({ plugins: [{ type: 'queue-scorer', name: 'x' }, { type: 'kv-cache-utilization-scorer', name: 'x' }] }), [
      'plugins[1]: duplicate plugin name "x" (type "kv-cache-utilization-scorer", already used by type "queue-scorer")',
    ]);
    assert.equal(problems({ plugins: [{ type: 'queue-scorer' }, { type: 'queue-scorer' }] }).length, 1);
  });

  test('bad parameters name the plugin and the field', () => {
    const got = problems({ plugins: [{ type: 'prefix-cache-scorer', parameters: { blockSize: -1, colour: 'red' } }] });
    assert.equal(got.length, 2);
    assert.match(got[0], /^plugins\[0\] \(plugin "prefix-cache-scorer", type "prefix-cache-scorer"\): parameters\.blockSize: /);
    assert.match(got[1], /parameters: .*colour/);
  });

  test('profile problems: unknown refs, a plugin listed twice, two pickers, several profiles — all reported together', () => {
    const got = problems({
      plugins: [{ type: 'queue-scorer' }, { type: 'max-score-picker' }, { type: 'random-picker' }, { type: 'nope' }],
      schedulingProfiles: [
        {
          name: 'a',
          plugins: [
            { pluginRef: 'queue-scorer' },
            { pluginRef: 'queue-scorer' },
            { pluginRef: 'ghost' },
            { pluginRef: 'nope' },
            { pluginRef: 'max-score-picker' },
            { pluginRef: 'random-picker' },
          ],
        },
        { name: 'b', plugins: [{ pluginRef: 'queue-scorer' }] },
      ],
    });
    assert.deepEqual(got, [
      `plugins[3]: plugin "nope" has unknown type "nope" (known: ${registry.types().join(', ')})`,
      'schedulingProfiles: one profile is supported, found 2 ("a", "b")',
      'schedulingProfiles[0] ("a").plugins[1].pluginRef: plugin "queue-scorer" is listed twice',
      'schedulingProfiles[0] ("a").plugins[2].pluginRef: no plugin named "ghost"',
      'schedulingProfiles[0] ("a").plugins[5].pluginRef: a profile has one picker, "max-score-picker" and "random-picker" are both pickers',
    ]);
  });

  test('the error message carries every problem', () => {
    assert.throws(() => compile({ plugins: [{ type: 'a' }, { type: 'b' }] }), /unknown type "a".*unknown type "b"/);
  });
});

describe('pickerConfigProblems', () => {
  test('[] for a good config, the problems for a bad one', () => {
    assert.deepEqual(pickerConfigProblems(DEFAULT_PICKER_CONFIG), []);
    assert.equal(pickerConfigProblems({ plugins: [{ type: 'x-scorer' }] }).length, 1);
  });
});

describe('PluginRegistry', () => {
  test('refuses to register a type twice', () => {
    assert.throws(() => registerBuiltins(new PluginRegistry()).scorer('queue-scorer', () => ({}) as never), /already registered/);
  });
});
