// `tollgate serve` as a real child process (run from source through tsx): bad configuration and flags (exit code 2),
// the ext_proc listener's flags, where the admin port listens. Signals and the demo: cli-signals.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ExtprocClient } from '../src/extproc/client.js';
import { headerMap } from './helpers/extproc-envoy.js';
import { startStub } from './helpers/stub-upstream.js';
import { poolAndModelYaml } from './helpers/manifests.js';
import { chat, EXTERNAL_IPV4, freePorts, kill, NO_EXTERNAL, refusal, runCli, send, serveWith, statusOf, tempDir, untilPrinted } from './helpers/cli-run.js';

// Each test starts processes of its own and waits on their exit: three at a time (one after another, this file took
// ~100 s of the suite on a slow host).
describe('tollgate serve: bad configuration and flags', { concurrency: 3 }, () => {
  test('a malformed TOLLGATE_KVM_KEY: exit code 2 and one line, before the store is opened', async () => {
    const dir = await tempDir();
    const file = join(dir, 'gateway.yaml');
    await writeFile(file, poolAndModelYaml('http://127.0.0.1:9'));
    const [port, adminPort] = await freePorts(2);
    const db = join(dir, 't.db');
    const lines = await refusal(['serve', '--config', file, '--port', String(port), '--admin-port', String(adminPort), '--db', `sqlite:${db}`], dir, { TOLLGATE_KVM_KEY: 'tooshort' });
    assert.deepEqual(lines, ['tollgate serve: TOLLGATE_KVM_KEY must hold 32 bytes (64 hex characters or 44 base64 characters)']);
    assert.equal(existsSync(db), false, 'the store was opened');
  });

  test('one bad field: exit code 2 and one line naming file, document, kind/name and field path', async () => {
    const dir = await tempDir();
    const file = join(dir, 'bad.yaml');
    await writeFile(file, `${poolAndModelYaml('http://127.0.0.1:9')}  criticality: Urgent\n`);
    const [port, adminPort] = await freePorts(2);
    const lines = await refusal(['serve', '--config', file, '--port', String(port), '--admin-port', String(adminPort), '--db', `sqlite:${join(dir, 't.db')}`], dir);
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0], /^tollgate: config: .*bad\.yaml document 1 \(InferenceModel\/m\): spec\.criticality: .*Critical/);
    assert.ok(lines[0].includes(file), lines[0]);
  });

  // DESIGN.md: "bad flags and bad config give one clear line and exit code 2". With several problems serve prints one
  // self-contained line per problem (as `tollgate apply` does): each is the one clear line for its problem, and
  // nothing else (no stack, no usage text) is printed. That meets the contract; stopping at the first problem would
  // only make the user run it again per mistake.
  test('several problems: exit code 2, exactly one line per problem and nothing else', async () => {
    const dir = await tempDir();
    const file = join(dir, 'several.yaml');
    await writeFile(
      file,
      `${poolAndModelYaml('http://127.0.0.1:9')}  criticality: Urgent
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: { name: other }
spec:
  modelName: 5
  poolRef: { name: pool }
`,
    );
    const [port, adminPort] = await freePorts(2);
    const lines = await refusal(['serve', '--config', file, '--port', String(port), '--admin-port', String(adminPort), '--db', `sqlite:${join(dir, 't.db')}`], dir);
    assert.equal(lines.length, 2, lines.join('\n'));
    assert.match(lines[0], /^tollgate: config: .*several\.yaml document 1 \(InferenceModel\/m\): spec\.criticality: /);
    assert.match(lines[1], /^tollgate: config: .*several\.yaml document 2 \(InferenceModel\/other\): spec\.modelName: .*string/);
  });

  test('a YAML syntax error and a missing file: exit code 2, one line each', async () => {
    const dir = await tempDir();
    const broken = join(dir, 'broken.yaml');
    await writeFile(broken, 'apiVersion: v1\nkind: [\n');
    for (const [file, expected] of [
      [broken, /^tollgate: config: .*broken\.yaml document 0: YAML: /],
      [join(dir, 'missing.yaml'), /^tollgate: config: .*missing\.yaml: no such file/],
    ] as const) {
      const lines = await refusal(['serve', '--config', file, '--port', '0', '--admin-port', '0', '--db', `sqlite:${join(dir, 't.db')}`], dir);
      assert.equal(lines.length, 1, lines.join('\n'));
      assert.match(lines[0], expected);
    }
  });

  test('--tls-cert without --tls-key (and the reverse): exit code 2 and one clear line', async () => {
    const dir = await tempDir();
    const file = join(dir, 'good.yaml');
    await writeFile(file, poolAndModelYaml('http://127.0.0.1:9'));
    for (const flag of ['--tls-cert', '--tls-key']) {
      const [port, adminPort] = await freePorts(2);
      const lines = await refusal(['serve', '--config', file, flag, join(dir, 'x.pem'), '--port', String(port), '--admin-port', String(adminPort), '--db', `sqlite:${join(dir, 't.db')}`], dir);
      assert.equal(lines.length, 1, lines.join('\n'));
      assert.match(lines[0], /--tls-cert and --tls-key go together/);
    }
  });

  // Before: exit code 1 with Node's bare "ENOENT: no such file or directory, open ..." or OpenSSL's error and a stack.
  test('TLS files that cannot be used (missing, not PEM): exit code 2 and one line naming the flag', async () => {
    const dir = await tempDir();
    const file = join(dir, 'good.yaml');
    await writeFile(file, poolAndModelYaml('http://127.0.0.1:9'));
    const notPem = join(dir, 'not.pem');
    await writeFile(notPem, 'this is not a certificate\n');
    for (const [cert, key, expected] of [
      [notPem, join(dir, 'missing.key'), /^tollgate: --tls-key: cannot read .*missing\.key: no such file$/],
      [join(dir, 'missing.pem'), notPem, /^tollgate: --tls-cert: cannot read .*missing\.pem: no such file$/],
      [notPem, notPem, /^tollgate: --tls-cert\/--tls-key: the certificate and key cannot be used: .+/],
    ] as const) {
      const [port, adminPort] = await freePorts(2);
      const lines = await refusal(['serve', '--config', file, '--tls-cert', cert, '--tls-key', key, '--port', String(port), '--admin-port', String(adminPort), '--db', `sqlite:${join(dir, 't.db')}`], dir);
      assert.equal(lines.length, 1, lines.join('\n'));
      assert.match(lines[0], expected);
    }
  });

  // Before: exit code 1 with Node's bare "ENOENT: no such file or directory, open ...", naming neither the document nor
  // the field.
  test('an ExtensionChain tls file that cannot be read: exit code 2 and one line naming file, document, kind/name and field', async () => {
    const dir = await tempDir();
    const file = join(dir, 'chain.yaml');
    const chain = `apiVersion: tollgate.dev/v1alpha1
kind: ExtensionChain
metadata: { name: pdp }
spec:
  extensions:
    - { name: authz, address: "127.0.0.1:9", supportedEvents: [RequestHeaders], tls: { ca: ${join(dir, 'pdp-ca.pem')} } }
`;
    await writeFile(file, `${poolAndModelYaml('http://127.0.0.1:9')}---\n${chain}`);
    const [port, adminPort] = await freePorts(2);
    const lines = await refusal(['serve', '--config', file, '--port', String(port), '--admin-port', String(adminPort), '--db', `sqlite:${join(dir, 't.db')}`], dir);
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0], /^tollgate: config: .*chain\.yaml document 2 \(ExtensionChain\/pdp\): spec\.extensions\[0\]\.tls\.ca: cannot read .*pdp-ca\.pem: no such file$/);
  });

  // Before: exit code 1 with Node's bare "listen EADDRINUSE" (and the listeners, database and analytics thread
  // opened before it left to the forced exit).
  test('a port that is taken (--port, --admin-port, --extproc-port): exit code 2 and one line naming the flag and address', async () => {
    const dir = await tempDir();
    const file = join(dir, 'good.yaml');
    await writeFile(file, poolAndModelYaml('http://127.0.0.1:9'));
    for (const flag of ['--port', '--admin-port', '--extproc-port']) {
      const taken = createServer();
      await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
      const takenPort = (taken.address() as { port: number }).port;
      const [port, adminPort, extprocPort] = await freePorts(3);
      const ports = { '--port': port, '--admin-port': adminPort, '--extproc-port': extprocPort, [flag]: takenPort };
      const args = Object.entries(ports).flatMap(([f, p]) => [f, String(p)]);
      try {
        const lines = await refusal(['serve', '--config', file, ...args, '--db', `sqlite:${join(dir, 't.db')}`], dir);
        assert.equal(lines.length, 1, lines.join('\n'));
        // The data plane and ext_proc listen on every interface, the admin API (without a token) on loopback.
        const host = flag === '--admin-port' ? '127\\.0\\.0\\.1' : '0\\.0\\.0\\.0';
        assert.match(lines[0], new RegExp(`^tollgate: ${flag}: cannot listen on ${host}:${takenPort}: the address is already in use$`));
      } finally {
        taken.close();
      }
    }
  });
});

describe('tollgate serve: the ext_proc listener flags', { concurrency: 3 }, () => {
  test('bad values, and ext_proc flags without --extproc-port: exit code 2 and one line naming the flag', async () => {
    const dir = await tempDir();
    const file = join(dir, 'good.yaml');
    await writeFile(file, poolAndModelYaml('http://127.0.0.1:9'));
    const [port, adminPort, extprocPort] = await freePorts(3);
    const base = ['serve', '--config', file, '--port', String(port), '--admin-port', String(adminPort), '--db', `sqlite:${join(dir, 't.db')}`];
    const withPort = [...base, '--extproc-port', String(extprocPort)];
    for (const [args, expected] of [
      [[...withPort, '--extproc-roles', 'pdp,picker'], /--extproc-roles.*"pdp,picker" is not a list of pdp, epp/],
      [[...withPort, '--extproc-body-mode', 'DUPLEX'], /--extproc-body-mode.*DUPLEX/],
      [[...withPort, '--extproc-response-body-mode', 'BUFFERED_PARTIAL'], /--extproc-response-body-mode.*BUFFERED_PARTIAL/],
      [[...withPort, '--extproc-tls-cert', join(dir, 'x.pem')], /--extproc-tls-cert and --extproc-tls-key go together/],
      [[...base, '--extproc-roles', 'epp'], /--extproc-roles needs --extproc-port/],
      [[...base, '--extproc-response-body-mode', 'BUFFERED'], /--extproc-response-body-mode needs --extproc-port/],
    ] as const) {
      const lines = await refusal([...args], dir);
      assert.equal(lines.length, 1, lines.join('\n'));
      assert.match(lines[0], expected);
    }
  });

  // Before: each was "--extproc-port: cannot listen on ...", and a CA file without a certificate started a listener
  // that refused every client without a word.
  test('ext_proc TLS files that cannot be used (missing, not PEM, a CA file without a certificate): exit code 2 and one line naming the flag', async () => {
    const dir = await tempDir();
    const file = join(dir, 'good.yaml');
    await writeFile(file, poolAndModelYaml('http://127.0.0.1:9'));
    const [cert, key, notPem, missing] = ['cert.pem', 'key.pem', 'not.pem', 'missing.pem'].map((n) => join(dir, n));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=extproc'], { stdio: 'ignore' });
    await writeFile(notPem, 'this is not a certificate\n');
    const cases: Promise<void>[] = [];
    for (const [tls, expected] of [
      [[missing, key], /^tollgate: --extproc-tls-cert: cannot read .*missing\.pem: no such file$/],
      [[cert, missing], /^tollgate: --extproc-tls-key: cannot read .*missing\.pem: no such file$/],
      [[notPem, notPem], /^tollgate: --extproc-tls-cert\/--extproc-tls-key: the certificate and key cannot be used: .+/],
      [[cert, key, missing], /^tollgate: --extproc-tls-ca: cannot read .*missing\.pem: no such file$/],
      [[cert, key, notPem], /^tollgate: --extproc-tls-ca: .*not\.pem holds no certificate/],
    ] as const) {
      const [port, adminPort, extprocPort] = await freePorts(3);
      const flags = ['--extproc-tls-cert', tls[0], '--extproc-tls-key', tls[1], ...(tls[2] ? ['--extproc-tls-ca', tls[2]] : [])];
      cases.push(
        refusal(['serve', '--config', file, '--port', String(port), '--admin-port', String(adminPort), '--db', 'sqlite:t.db', '--extproc-port', String(extprocPort), ...flags], await tempDir()).then((lines) => {
          assert.equal(lines.length, 1, lines.join('\n'));
          assert.match(lines[0], expected);
        }),
      );
    }
    // The cases at once, each a process of its own in a directory of its own (its database and analytics spool are
    // there): one after another they took ~27 s on a slow host.
    await Promise.all(cases);
  });

  test('--extproc-roles epp --extproc-body-mode BUFFERED reach the listener: a body sent without end_of_stream is picked for, no key asked', async () => {
    const stub = await startStub();
    const dir = await tempDir();
    const file = join(dir, 'gateway.yaml');
    await writeFile(file, poolAndModelYaml(stub.url));
    const [port, adminPort, extprocPort] = await freePorts(3);
    const cli = runCli(['serve', '--config', file, '--port', String(port), '--admin-port', String(adminPort), '--db', `sqlite:${join(dir, 't.db')}`, '--extproc-port', String(extprocPort), '--extproc-roles', 'epp', '--extproc-body-mode', 'BUFFERED'], dir);
    const client = new ExtprocClient({ address: `127.0.0.1:${extprocPort}` });
    try {
      await untilPrinted(cli, /tollgate is serving/, 'serve');
      const call = client.open(10_000);
      await call.send({ request_headers: { headers: headerMap([[':method', 'POST'], [':path', '/v1/chat/completions'], ['content-type', 'application/json']]), end_of_stream: false } });
      const decided = await call.send({ request_body: { body: Buffer.from(chat('m').body), end_of_stream: false } });
      const destination = decided.request_body?.response?.header_mutation?.set_headers?.find((h) => h.header.key === 'x-gateway-destination-endpoint');
      assert.ok(destination, JSON.stringify(decided).slice(0, 300));
      call.end();
    } finally {
      client.close();
      await kill(cli.child);
      await stub.close();
    }
  });
});

describe('tollgate serve: admin port without TOLLGATE_ADMIN_TOKEN', () => {
  let served: Awaited<ReturnType<typeof serveWith>>;
  before(async () => (served = await serveWith({})));
  after(() => served && kill(served.cli.child));

  test('answers on loopback, admin routes without a token', async () => {
    assert.equal(statusOf(await send(`http://127.0.0.1:${served.adminPort}/healthz`)), 200);
    assert.equal(statusOf(await send(`http://127.0.0.1:${served.adminPort}/v1/apiproducts`)), 200);
  });

  test('is not reachable through a non-loopback address (the data plane is)', { skip: NO_EXTERNAL }, async () => {
    // The data plane listens on every interface: the address is reachable, so the admin port's refusal is its bind address.
    assert.equal(statusOf(await send(`http://${EXTERNAL_IPV4}:${served.port}/v1/models`)), 200);
    assert.equal(statusOf(await send(`http://${EXTERNAL_IPV4}:${served.adminPort}/healthz`)), 'ECONNREFUSED');
  });
});

describe('tollgate serve: admin port with TOLLGATE_ADMIN_TOKEN', () => {
  const token = 'cli-serve-admin-token';
  let served: Awaited<ReturnType<typeof serveWith>>;
  before(async () => (served = await serveWith({ TOLLGATE_ADMIN_TOKEN: token })));
  after(() => served && kill(served.cli.child));

  test('admin requests without the token (or with a wrong one) get 401, with it 200; health needs none', async () => {
    const admin = `http://127.0.0.1:${served.adminPort}`;
    assert.equal(statusOf(await send(`${admin}/v1/apiproducts`)), 401);
    assert.equal(statusOf(await send(`${admin}/v1/apiproducts`, { headers: { authorization: `Bearer ${token}x` } })), 401);
    assert.equal(statusOf(await send(`${admin}/v1/apiproducts`, { headers: { authorization: `Bearer ${token}` } })), 200);
    assert.equal(statusOf(await send(`${admin}/healthz`)), 200);
  });

  test('with a token the admin port listens beyond loopback, and still asks for the token there', { skip: NO_EXTERNAL }, async () => {
    const admin = `http://${EXTERNAL_IPV4}:${served.adminPort}`;
    assert.equal(statusOf(await send(`${admin}/v1/apiproducts`)), 401);
    assert.equal(statusOf(await send(`${admin}/v1/apiproducts`, { headers: { authorization: `Bearer ${token}` } })), 200);
  });
});

describe('tollgate serve: TOLLGATE_ADMIN_TOKEN with white space', () => {
  const token = 'cli-serve-admin-token';
  let served: Awaited<ReturnType<typeof serveWith>> | undefined;
  after(() => served && kill(served.cli.child));

  test('around it (a trailing newline from a Secret file) is dropped: the token works (before: no one could authenticate)', async () => {
    served = await serveWith({ TOLLGATE_ADMIN_TOKEN: ` ${token}\n` });
    const admin = `http://127.0.0.1:${served.adminPort}`;
    assert.equal(statusOf(await send(`${admin}/v1/apiproducts`, { headers: { authorization: `Bearer ${token}` } })), 200);
    assert.equal(statusOf(await send(`${admin}/v1/apiproducts`)), 401);
  });

  test('inside it: exit code 2 and one line that does not show the token (before: it served, and no one could authenticate)', async () => {
    const dir = await tempDir();
    const file = join(dir, 'good.yaml');
    await writeFile(file, poolAndModelYaml('http://127.0.0.1:9'));
    const lines = await refusal(['serve', '--config', file, '--port', '0', '--admin-port', '0', '--db', `sqlite:${join(dir, 't.db')}`], dir, { TOLLGATE_ADMIN_TOKEN: 'two halves\nof-a-token' });
    assert.deepEqual(lines, ['tollgate serve: TOLLGATE_ADMIN_TOKEN holds white space or characters other than visible ASCII, which an Authorization header cannot carry as a bearer token']);
  });
});


// A password in argv is visible to every user of the host (`ps`, /proc/PID/cmdline): serve reads both URLs from the
// environment too, the flag winning, and names the variable when one cannot be used.
describe('tollgate serve: --db and --redis from TOLLGATE_DB and TOLLGATE_REDIS', { concurrency: 3 }, () => {
  async function manifest(): Promise<{ dir: string; file: string }> {
    const dir = await tempDir();
    const file = join(dir, 'gateway.yaml');
    await writeFile(file, poolAndModelYaml('http://127.0.0.1:9'));
    return { dir, file };
  }

  test('TOLLGATE_DB opens that store, which stays out of the command line; --db wins over it', async () => {
    const { dir, file } = await manifest();
    const [port, adminPort] = await freePorts(2);
    const fromEnv = join(dir, 'from-env.db');
    const cli = runCli(['serve', '--config', file, '--port', String(port), '--admin-port', String(adminPort)], dir, { TOLLGATE_DB: ` sqlite:${fromEnv}\n` });
    try {
      await untilPrinted(cli, /tollgate is serving/, 'serve');
      assert.equal(existsSync(fromEnv), true, 'the store TOLLGATE_DB names was not opened');
      assert.equal(existsSync(join(dir, 'tollgate.db')), false, 'the default store was opened');
      assert.doesNotMatch(readFileSync(`/proc/${cli.child.pid}/cmdline`, 'utf8'), /from-env/);
    } finally {
      await kill(cli.child);
    }
    const fromFlag = join(dir, 'from-flag.db');
    const both = runCli(['serve', '--config', file, '--port', String(port), '--admin-port', String(adminPort), '--db', `sqlite:${fromFlag}`], dir, { TOLLGATE_DB: 'mysql://127.0.0.1/x' });
    try {
      await untilPrinted(both, /tollgate is serving/, 'serve');
      assert.equal(existsSync(fromFlag), true);
    } finally {
      await kill(both.child);
    }
  });

  test('a variable set but empty is unset: the default store, counters in memory', async () => {
    const { dir, file } = await manifest();
    const [port, adminPort] = await freePorts(2);
    const cli = runCli(['serve', '--config', file, '--port', String(port), '--admin-port', String(adminPort)], dir, { TOLLGATE_DB: '', TOLLGATE_REDIS: ' ' });
    try {
      await untilPrinted(cli, /tollgate is serving/, 'serve');
      assert.equal(existsSync(join(dir, 'tollgate.db')), true);
    } finally {
      await kill(cli.child);
    }
  });

  test('one that cannot be used: exit code 2 and one line naming the variable, passwords hidden', async () => {
    const { dir, file } = await manifest();
    const [closed] = await freePorts(1);
    const serve = ['serve', '--config', file, '--port', '0', '--admin-port', '0'];
    const db = ['--db', `sqlite:${join(dir, 't.db')}`];
    const cases: [string[], Record<string, string>, RegExp][] = [
      [db, { TOLLGATE_REDIS: `redis://:s3cret@127.0.0.1:${closed}` }, /^tollgate: TOLLGATE_REDIS redis:\/\/:\*\*\*@127\.0\.0\.1:\d+: Redis is unavailable: .*ECONNREFUSED/],
      [db, { TOLLGATE_REDIS: 'http://u:s3cret@127.0.0.1:6379' }, /^tollgate serve: TOLLGATE_REDIS: expected redis:\/\/, /],
      [[], { TOLLGATE_DB: `postgres://tollgate:s3cret@127.0.0.1:${closed}/x` }, /^tollgate: TOLLGATE_DB: cannot open the database postgres:\/\/tollgate:\*\*\*@127\.0\.0\.1:\d+\/x: .*ECONNREFUSED/],
      // Mistyped (no scheme, a scheme without its slashes): still no password shown.
      [db, { TOLLGATE_REDIS: ':s3cret@127.0.0.1:6379' }, /^tollgate serve: TOLLGATE_REDIS: expected redis:\/\/, .*got "\*\*\*@127\.0\.0\.1:6379"$/],
      [[], { TOLLGATE_DB: 'postgres:/app:s3cret@127.0.0.1:5432/tg' }, /^tollgate: TOLLGATE_DB: unsupported database URL "postgres:\/\*\*\*@127\.0\.0\.1:5432\/tg"/],
      // The flag wins, and its own failure names the flag.
      [[...db, '--redis', `redis://127.0.0.1:${closed}`], { TOLLGATE_REDIS: 'http://127.0.0.1:6379' }, /^tollgate: --redis redis:\/\/127\.0\.0\.1:\d+: Redis is unavailable: /],
    ];
    for (const [flags, env, expected] of cases) {
      const lines = await refusal([...serve, ...flags], dir, env);
      assert.equal(lines.length, 1, lines.join('\n'));
      assert.match(lines[0], expected);
      assert.doesNotMatch(lines[0], /s3cret/);
    }
  });
});
