// Every declared policy is built when the configuration loads, listed by a template or not, so what its factory checks
// (a file it reads, a pattern RE2 must run, a secret in the environment) is refused then, not by the later change that
// lists it. Each is built once, and only those a flow runs are started.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseManifests } from '../config/manifest.js';
import { silentLogger } from '../lib/logger.js';
import { MemoryCounterStore } from '../store/counters/memory.js';
import { createPolicyEngine, type PolicyEngineOptions } from './engine.js';
import { checkTemplates } from './flow.js';
import { MemoryIdentitySource } from './memory-identity.js';
import { PolicyRegistry, registerBuiltins } from './registry.js';
import type { PolicyFactory } from './types.js';

const V = 'apiVersion: apim.googleapis.com/v1';
const doc = (kind: string, name: string, spec: string) => `${V}\nkind: ${kind}\nmetadata: {name: ${name}}\nspec: ${spec}\n`;
const ext = doc('APIMExtensionPolicy', 'ext', '{targetRef: {name: gw}}');
const sa = doc('SpikeArrest', 'sa', '{rate: 100ps}');
const listsSa = doc('ApimTemplate', 't', '{templates: [{policies: [{kind: SpikeArrest, name: sa}]}]}');

/** The three the documentation says are refused at load: none of them is listed by a template. */
const unbuildable = [
  doc('OASValidation', 'oas-missing-file', '{source: /nonexistent/tollgate/chat.yaml}'),
  doc(
    'OASValidation',
    'oas-bad-pattern',
    `{openApi: {openapi: 3.0.0, info: {title: x, version: '1'}, paths: {/v1/x: {post: {requestBody: {content: {application/json: {schema: {type: object, properties: {a: {type: string, pattern: '(x+x+)+(?=y)'}}}}}}}}}}}`,
  ),
  doc('GenerateJWT', 'jwt-unset-env', '{algorithm: HS256, secretKey: {env: TOLLGATE_TEST_UNSET_SECRET}, issuer: tollgate}'),
];

const options = (source: string, ...docs: string[]): PolicyEngineOptions => ({
  manifests: parseManifests(docs.join('---\n'), source),
  counters: new MemoryCounterStore(),
  identity: new MemoryIdentitySource(),
  logger: silentLogger,
});

function problemsOf(opts: PolicyEngineOptions): string[] {
  try {
    createPolicyEngine(opts);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

test('policies in --config files that no template lists are refused when they cannot be built, naming each', () => {
  delete process.env.TOLLGATE_TEST_UNSET_SECRET;
  const problems = problemsOf(options('apim.yaml', ext, sa, listsSa, ...unbuildable));
  assert.equal(problems.length, 3, problems.join('\n'));
  assert.match(problems[0], /^apim\.yaml document 3 \(OASValidation\/oas-missing-file\): spec: spec\.source: \/nonexistent\/tollgate\/chat\.yaml: not a regular file/);
  assert.match(problems[1], /^apim\.yaml document 4 \(OASValidation\/oas-bad-pattern\): .*\(x\+x\+\)\+\(\?=y\)/);
  assert.match(problems[2], /^apim\.yaml document 5 \(GenerateJWT\/jwt-unset-env\): .*TOLLGATE_TEST_UNSET_SECRET/);
  // API management off: nothing runs, but what is declared is checked as it will be built once it is on.
  const off = checkTemplates(parseManifests([sa, listsSa, ...unbuildable].join('---\n'), 'apim.yaml'), registerBuiltins(), {
    counters: new MemoryCounterStore(),
    identity: new MemoryIdentitySource(),
    logger: silentLogger,
    now: Date.now,
  });
  assert.equal(off.length, 3, off.join('\n'));
});

test("the admin API's unlisted policies that cannot be built are logged rather than refused at load, and told to apply", () => {
  const warned: unknown[] = [];
  const logger = { ...silentLogger, warn: (obj: unknown) => void warned.push(obj) } as typeof silentLogger;
  const engine = createPolicyEngine({ ...options('admin-api', ext, sa, listsSa, ...unbuildable), logger });
  assert.deepEqual(engine.policies.map((p) => p.name), ['sa'], 'the listed policy runs');
  assert.equal(engine.unlistedProblems.length, 3, engine.unlistedProblems.join('\n'));
  assert.match(engine.unlistedProblems[0], /^admin-api document 3 \(OASValidation\/oas-missing-file\)/);
  assert.deepEqual(warned, [{ problems: engine.unlistedProblems }]);
  // Listed, it runs: a problem like any other.
  const listed = doc('ApimTemplate', 'u', '{templates: [{policies: [{kind: GenerateJWT, name: jwt-unset-env}]}]}');
  const problems = problemsOf(options('admin-api', ext, sa, listsSa, unbuildable[2], listed));
  assert.equal(problems.length, 1, problems.join('\n'));
  assert.match(problems[0], /GenerateJWT\/jwt-unset-env/);
});

test('each declared policy is built once, listed or not, and only those the flow runs are started', () => {
  const built: string[] = [];
  const started: string[] = [];
  const counted: PolicyFactory = (name) => {
    built.push(name);
    return { type: 'spike-arrest', name, start: () => void started.push(name), admit() {} };
  };
  const registry = new PolicyRegistry();
  for (const kind of registerBuiltins().kinds()) registry.register(kind, kind === 'SpikeArrest' ? counted : registerBuiltins().get(kind)!);
  const engine = createPolicyEngine({ ...options('apim.yaml', ext, sa, doc('SpikeArrest', 'idle', '{rate: 1ps}'), listsSa), registry });
  assert.deepEqual(built.sort(), ['idle', 'sa']);
  assert.deepEqual(started, ['sa']);
  assert.ok(engine.policies.some((p) => p.name === 'sa'));
  assert.ok(!engine.policies.some((p) => p.name === 'idle'));
});
