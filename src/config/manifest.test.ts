import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, MAX_DOCUMENT_PROBLEMS, parseManifests, readDocuments } from './manifest.js';
import { compileConfig } from './runtime-config.js';

function problemsOf(text: string): string[] {
  try {
    compileConfig(parseManifests(text, 'f.yaml'));
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  assert.fail('expected a ConfigError');
}

const POOL = `apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: { name: p }
spec: { endpoints: ["http://127.0.0.1:9000"] }
`;

test('YAML merge keys (<<: *anchor) merge, as kubectl reads them', () => {
  // Anchors live within one document: here a list of two models, the second built on the first's spec.
  const text = `- apiVersion: inference.networking.x-k8s.io/v1alpha2
  kind: InferenceModel
  metadata: { name: a }
  spec: &common
    modelName: a
    criticality: Critical
    poolRef: { name: p }
- apiVersion: inference.networking.x-k8s.io/v1alpha2
  kind: InferenceModel
  metadata: { name: b }
  spec:
    <<: *common
    modelName: b
`;
  const [, b] = parseManifests(text, 'f.yaml') as { spec: { modelName: string; criticality: string } }[];
  assert.deepEqual([b.spec.modelName, b.spec.criticality], ['b', 'Critical']);
});

describe('manifest errors name file, document, kind/name and field path', () => {
  const cases: { name: string; text: string; expect: RegExp }[] = [
    { name: 'YAML syntax', text: 'kind: [unclosed', expect: /^f\.yaml document 0: YAML: / },
    // Counted by position in the file: the empty document (Helm writes them) and the broken one count.
    { name: 'index after an empty document', text: POOL + '---\n---\n' + POOL.replace('name: p', 'name: q').replace('spec: {', 'spec: { bogus: 1,'), expect: /f\.yaml document 2 \(InferencePool\/q\): spec: .*bogus/ },
    // A list document's items each take a position: the document after a two-item list is 2, not a second 1.
    { name: 'index after a list document', text: '- {apiVersion: x/v1, kind: A, metadata: {name: a}}\n- {apiVersion: x/v1, kind: B, metadata: {name: b}}\n---\n' + POOL.replace('spec: {', 'spec: { bogus: 1,'), expect: /f\.yaml document 2 \(InferencePool\/p\): spec: .*bogus/ },
    // Wrong around the spec, with a kind and a name still: named too (they were left out).
    { name: 'missing apiVersion', text: 'kind: InferencePool\nmetadata: {name: p}\nspec: {}', expect: /^f\.yaml document 0 \(InferencePool\/p\): apiVersion: / },
    { name: 'spec misspelt', text: POOL.replace('spec:', 'specs:'), expect: /^f\.yaml document 0 \(InferencePool\/p\): spec: required$/ },
    { name: 'label value not a string', text: POOL.replace('name: p }', 'name: p, labels: { tier: 1 } }'), expect: /^f\.yaml document 0 \(InferencePool\/p\): metadata\.labels\.tier: / },
    { name: 'no kind to name', text: 'apiVersion: x/v1\nmetadata: {name: p}\nspec: {}', expect: /^f\.yaml document 0: kind: / },
    { name: 'unknown kind', text: 'apiVersion: x/v1\nkind: Nope\nmetadata: {name: n}\nspec: {}', expect: /f\.yaml document 0 \(Nope\/n\): kind: unknown kind "Nope"/ },
    { name: 'wrong apiVersion', text: 'apiVersion: x/v1\nkind: InferencePool\nmetadata: {name: p}\nspec: {}', expect: /\(InferencePool\/p\): apiVersion: "x\/v1" is not served for InferencePool/ },
    { name: 'bad field type', text: POOL + '---\n' + POOL.replace('name: p', 'name: q').replace('["http://127.0.0.1:9000"]', '"x"'), expect: /f\.yaml document 1 \(InferencePool\/q\): spec\.endpoints: / },
    { name: 'unknown field', text: POOL.replace('spec: {', 'spec: { bogus: 1,'), expect: /\(InferencePool\/p\): spec: .*bogus/ },
    {
      name: 'bad weight',
      text: POOL + '---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\nmetadata: {name: m}\nspec: {modelName: a, poolRef: {name: p}, targetModels: [{name: b, weight: "x"}]}',
      expect: /document 1 \(InferenceModel\/m\): spec\.targetModels\[0\]\.weight: /,
    },
    {
      name: 'criticality enum',
      text: POOL + '---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\nmetadata: {name: m}\nspec: {modelName: a, poolRef: {name: p}, criticality: Urgent}',
      expect: /spec\.criticality: /,
    },
    {
      name: 'dangling poolRef',
      text: 'apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\nmetadata: {name: m}\nspec: {modelName: a, poolRef: {name: nope}}',
      expect: /\(InferenceModel\/m\): spec\.poolRef\.name: no InferencePool "nope"/,
    },
    { name: 'duplicate name', text: POOL + '---\n' + POOL, expect: /document 1 \(InferencePool\/p\): metadata\.name: duplicate InferencePool\/p, also defined in f\.yaml document 0/ },
    { name: 'bad duration', text: 'apiVersion: tollgate.dev/v1alpha1\nkind: GatewaySettings\nmetadata: {name: s}\nspec: {upstream: {firstByteTimeout: soon}}', expect: /spec\.upstream\.firstByteTimeout: invalid duration "soon"/ },
    {
      name: 'two GatewaySettings',
      text: 'apiVersion: tollgate.dev/v1alpha1\nkind: GatewaySettings\nmetadata: {name: a}\nspec: {}\n---\napiVersion: tollgate.dev/v1alpha1\nkind: GatewaySettings\nmetadata: {name: b}\nspec: {}',
      expect: /only one GatewaySettings may exist/,
    },
    {
      name: 'duplicate modelName',
      text: POOL + '---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\nmetadata: {name: m1}\nspec: {modelName: a, poolRef: {name: p}}\n---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\nmetadata: {name: m2}\nspec: {modelName: a, poolRef: {name: p}}',
      expect: /\(InferenceModel\/m2\): spec\.modelName: "a" is already served by another InferenceModel of InferencePool "p"/,
    },
    { name: 'pool endpoint with a path', text: POOL.replace('"http://127.0.0.1:9000"', '"http://127.0.0.1:9000/base"'), expect: /\(InferencePool\/p\): spec\.endpoints\[0\]: endpoint must be an origin, http\[s\]:\/\/host\[:port\], without a path/ },
    { name: 'pool endpoint written for envsubst', text: POOL.replace('"http://127.0.0.1:9000"', '"http://${VLLM_HOST}:8000"'), expect: /\(InferencePool\/p\): spec\.endpoints\[0\]: endpoint host holds `\$`, `\{` or `\}`: tollgate does not expand \$\{VARIABLES\}/ },
    { name: 'route URL with a path', text: 'apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec: {rules: [{backendRefs: [{url: "http://127.0.0.1:9000/base?x=1"}]}]}', expect: /\(HTTPRoute\/r\): spec\.rules\[0\]\.backendRefs\[0\]\.url: endpoint must be an origin/ },
    { name: 'route URL that is not one', text: 'apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec: {rules: [{backendRefs: [{url: "not a url"}]}]}', expect: /spec\.rules\[0\]\.backendRefs\[0\]\.url: / },
    { name: 'route to unknown pool', text: 'apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec: {rules: [{backendRefs: [{kind: InferencePool, name: x}]}]}', expect: /spec\.rules\[0\]\.backendRefs\[0\]\.name: no InferencePool "x"/ },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const problems = problemsOf(c.text);
      assert.ok(problems.some((p) => c.expect.test(p)), `none of ${JSON.stringify(problems)} matches ${c.expect}`);
    });
  }
});

describe('compiled configuration', () => {
  test('defaults, criticality priorities, targetPorts and per-model timeouts', () => {
    const cfg = compileConfig(
      parseManifests(
        `apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: { name: p }
spec: { endpoints: ["http://10.0.0.1", "http://10.0.0.2:7000"], targetPorts: [{number: 8000}, {number: 8001}] }
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: { name: m }
spec: { modelName: a, criticality: Sheddable, poolRef: { name: p }, timeouts: { firstByte: 2s } }
`,
        'f.yaml',
      ),
    );
    assert.deepEqual(cfg.pools.get('p')!.endpoints.map((e) => e.address), ['10.0.0.1:8000', '10.0.0.1:8001', '10.0.0.2:7000']);
    const m = cfg.models.get('a')![0];
    assert.equal(m.priority, -1);
    assert.equal(m.firstByteTimeoutMs, 2000);
    assert.equal(m.responseTimeoutMs, 600_000);
    assert.equal(cfg.settings.server.maxBodyBytes, 10 * 1024 * 1024);
    assert.equal(m.target, null);
  });

  test('a rewrite rule decides the target alone, and makes its model servable', () => {
    const cfg = compileConfig(
      parseManifests(
        POOL +
          `---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: { name: m }
spec: { modelName: a, poolRef: { name: p }, targetModels: [{ name: from-model, weight: 1 }] }
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModelRewrite
metadata: { name: rw }
spec:
  poolRef: { name: p }
  rules:
    - matches: [{ model: { value: a } }, { model: { value: alias } }]
      targets: [{ modelRewrite: from-rewrite, weight: 1 }]
`,
        'f.yaml',
      ),
    );
    assert.equal(cfg.models.get('a')![0].target!.pick(), 'from-rewrite');
    assert.equal(cfg.models.get('alias')![0].target!.pick(), 'from-rewrite');
  });

  test('the same modelName in two pools: a model of each, in the files\' order (an HTTPRoute chooses the pool)', () => {
    const model = (name: string, pool: string) =>
      `---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\nmetadata: { name: ${name} }\nspec: { modelName: a, poolRef: { name: ${pool} }, criticality: ${name === 'mq' ? 'Critical' : 'Standard'} }\n`;
    const cfg = compileConfig(parseManifests(POOL + '---\n' + POOL.replace('name: p', 'name: q') + model('mq', 'q') + model('mp', 'p'), 'f.yaml'));
    assert.deepEqual(cfg.models.get('a')!.map((m) => [m.pool.name, m.priority]), [['q', 1], ['p', 0]]);
  });

  test("a rewrite for one pool cannot rewrite a model another pool serves: a problem naming both documents", () => {
    const problems = problemsOf(
      POOL +
        `---
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: { name: q }
spec: { endpoints: ["http://127.0.0.1:9001"] }
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: { name: m }
spec: { modelName: a, poolRef: { name: q } }
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModelRewrite
metadata: { name: rw }
spec:
  poolRef: { name: p }
  rules: [{ matches: [{ model: { value: a } }], targets: [{ modelRewrite: b, weight: 1 }] }]
`,
    );
    assert.equal(problems.length, 1);
    assert.match(problems[0], /InferenceModelRewrite\/rw\).*spec\.poolRef\.name: rewrites "a" for InferencePool "p", but .*InferenceModel\/m\) serves it from "q"/);
  });
});

test('a document whose value cannot be built (alias limit, bad merge source) is one problem naming it; the other documents are still checked', () => {
  // The yaml library throws while building these, after parsing without an error: the first would swallow the rest.
  const laughs = `apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata:
  name: lol
  annotations:
    a: &a [x, x, x, x, x, x, x, x, x, x]
    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
    e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
spec: { endpoints: ["http://127.0.0.1:9000"] }
`;
  const badMerge = `apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: { name: merged }
spec:
  <<: not-a-map
  endpoints: ["http://127.0.0.1:9000"]
`;
  const broken = POOL.replace('name: p', 'name: q').replace('spec: {', 'spec: { bogus: 1,');
  const problems = problemsOf(`${POOL}---\n${laughs}---\n${badMerge}---\n${broken}`);
  assert.deepEqual(problems, [
    'f.yaml document 1 (InferencePool/lol): YAML: Excessive alias count indicates a resource exhaustion attack',
    'f.yaml document 2 (InferencePool/merged): YAML: Merge sources must be maps or map aliases',
    'f.yaml document 3 (InferencePool/q): spec: Unrecognized key: "bogus"',
  ]);
});

describe('what a document may cost to validate is bounded by its text', () => {
  const product = (i: number, attributes: string) => `- {apiVersion: apim.googleapis.com/v1, kind: APIProduct, metadata: {name: p${i}}, spec: {attributes: ${attributes}}}\n`;

  test('aliases that expand a document past ten times what it writes: one problem naming it, nothing validated', () => {
    // 30 KiB, under the yaml library's alias limit: a million values, 4 to 88 s of validation and GBs of memory.
    let text = product(0, `&a [${Array(10_000).fill(1).join(',')}]`);
    for (let i = 1; i < 100; i++) text += product(i, '*a');
    assert.deepEqual(problemsOf(text), ['f.yaml document 0: YAML: aliases expand the document to 1001301 values, more than 10 times the 11301 it writes']);
    const { raws, problems } = readDocuments(`${POOL}---\n${text}`, 'admin-api');
    assert.equal(raws.length, 1, 'the other documents are still read');
    assert.deepEqual(problems.map((p) => p.index), [1]);
  });

  test('an alias inside the node it names (a circular value) is one problem naming the document', () => {
    assert.deepEqual(problemsOf(POOL.replace('name: p }', 'name: p, annotations: &x { a: *x } }')), ['f.yaml document 0 (InferencePool/p): YAML: alias *x is inside the node it names']);
  });

  test('anchors shared as kubectl users share them still read', () => {
    let text = `- apiVersion: inference.networking.k8s.io/v1\n  kind: InferencePool\n  metadata: {name: p}\n  spec: {endpoints: &eps [${Array.from({ length: 8 }, (_, i) => `"http://10.0.0.${i}:8000"`).join(', ')}]}\n`;
    for (let i = 0; i < 50; i++) text += `- {apiVersion: inference.networking.k8s.io/v1, kind: InferencePool, metadata: {name: q${i}}, spec: {endpoints: *eps}}\n`;
    assert.equal(parseManifests(text, 'f.yaml').length, 51);
  });

  test('a list of 300,000 bad items: the first 100 problems naming document, kind and field, then a count of the rest', () => {
    // Before: "Maximum call stack size exceeded", naming nothing (the problems were spread into push()).
    const problems = problemsOf(POOL.replace('["http://127.0.0.1:9000"]', `[${Array(300_000).fill(1).join(',')}]`));
    assert.equal(problems.length, MAX_DOCUMENT_PROBLEMS + 1);
    assert.equal(problems[0], 'f.yaml document 0 (InferencePool/p): spec.endpoints[0]: Invalid input: expected string, received number');
    assert.equal(problems.at(-1), `f.yaml document 0 (InferencePool/p): and ${300_000 - MAX_DOCUMENT_PROBLEMS} more, not listed`);
  });
});
