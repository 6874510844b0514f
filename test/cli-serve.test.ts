// `tollgate serve` and `tollgate demo` as real child processes (run from source through tsx): bad config and flags
// (exit code 2), shutdown on SIGTERM with a request in flight, a reload on SIGHUP, the demo's printed credentials,
// where the admin port listens.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../src/lib/ports.js';
import { chatAnswer } from '../src/policy/caching/testing.js';
import { waitFor } from '../src/sim/testing.js';
import { ExtprocClient } from '../src/extproc/client.js';
import { spawnCli } from './helpers/cli-child.js';
import { headerMap } from './helpers/extproc-envoy.js';
import { json, startStub, type Stub } from './helpers/stub-upstream.js';
import { poolAndModelYaml } from './helpers/manifests.js';

/** Generous bounds against a hung child, not measurements: a cold tsx start on a busy 2-core machine takes seconds. */
const START_MS = 60_000;
const EXIT_MS = 30_000;

const children = new Set<ChildProcess>();
const dirs: string[] = [];

after(async () => {
  await Promise.all([...children].map((c) => kill(c)));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tollgate-cli-'));
  dirs.push(dir);
  return dir;
}

interface Cli {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs `tollgate ARGS` from source in `cwd` (helpers/cli-child.ts); TOLLGATE_ADMIN_TOKEN and TOLLGATE_LOG_LEVEL only from `env`. */
function runCli(args: string[], cwd: string, env: Record<string, string> = {}): Cli {
  const child = spawnCli(args, cwd, env);
  children.add(child);
  const cli: Cli = {
    child,
    stdout: '',
    stderr: '',
    exited: once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null })),
  };
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (cli.stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (cli.stderr += d));
  return cli;
}

/** Runs a `tollgate` command that must refuse to start: exit code 2, nothing served, no stack; the lines it printed on stderr. */
async function refusal(args: string[], cwd: string, env: Record<string, string> = {}): Promise<string[]> {
  const cli = runCli(args, cwd, env);
  try {
    assert.equal(await exitCode(cli), 2, cli.stderr);
    assert.doesNotMatch(cli.stdout, /tollgate is serving/);
    assert.doesNotMatch(cli.stderr, /^\s+at /m);
    return cli.stderr.trimEnd().split('\n');
  } finally {
    await kill(cli.child);
  }
}

/** The exit code, or a failure naming what the child printed when it has not exited within EXIT_MS. */
async function exitCode(cli: Cli): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running after ${EXIT_MS} ms\nstdout: ${cli.stdout}\nstderr: ${cli.stderr}`)), EXIT_MS);
  });
  try {
    const { code, signal } = await Promise.race([cli.exited, timeout]);
    assert.equal(signal, null, `killed by ${signal}\nstderr: ${cli.stderr}`);
    return code;
  } finally {
    clearTimeout(timer);
  }
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }
  children.delete(child);
}

async function untilPrinted(cli: Cli, what: RegExp, label: string): Promise<void> {
  await waitFor(
    () => {
      if (cli.child.exitCode !== null) throw new Error(`${label}: exited with ${cli.child.exitCode} first\nstdout: ${cli.stdout}\nstderr: ${cli.stderr}`);
      return what.test(cli.stdout);
    },
    START_MS,
    `${label} (stdout: ${cli.stdout} stderr: ${cli.stderr})`,
    20,
  );
}

/** Distinct free ports (freePort() may hand out a number twice once the first is released). */
async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

type Outcome = { status: number; body: string } | { error: string };

/** One request on a connection of its own (no keep-alive pool), so "new connection" means a new connection. */
function send(url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = request(url, { method: init.method ?? 'GET', headers: init.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
      res.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    req.end(init.body);
  });
}

function statusOf(o: Outcome): number | string {
  return 'status' in o ? o.status : o.error;
}

const chat = (model: string, headers: Record<string, string> = {}) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify({ model, messages: [{ role: 'user', content: 'Hello!' }], max_tokens: 4 }),
});

/** A non-loopback IPv4 address of this machine, if it has one. */
const EXTERNAL_IPV4 = Object.values(networkInterfaces())
  .flat()
  .find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address;
const NO_EXTERNAL = EXTERNAL_IPV4 === undefined ? 'this machine has no non-loopback IPv4 address to connect through' : false;

describe('tollgate serve: bad configuration and flags', () => {
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

describe('tollgate serve: the ext_proc listener flags', () => {
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
    for (const [tls, expected] of [
      [[missing, key], /^tollgate: --extproc-tls-cert: cannot read .*missing\.pem: no such file$/],
      [[cert, missing], /^tollgate: --extproc-tls-key: cannot read .*missing\.pem: no such file$/],
      [[notPem, notPem], /^tollgate: --extproc-tls-cert\/--extproc-tls-key: the certificate and key cannot be used: .+/],
      [[cert, key, missing], /^tollgate: --extproc-tls-ca: cannot read .*missing\.pem: no such file$/],
      [[cert, key, notPem], /^tollgate: --extproc-tls-ca: .*not\.pem holds no certificate/],
    ] as const) {
      const [port, adminPort, extprocPort] = await freePorts(3);
      const flags = ['--extproc-tls-cert', tls[0], '--extproc-tls-key', tls[1], ...(tls[2] ? ['--extproc-tls-ca', tls[2]] : [])];
      const lines = await refusal(['serve', '--config', file, '--port', String(port), '--admin-port', String(adminPort), '--db', `sqlite:${join(dir, 't.db')}`, '--extproc-port', String(extprocPort), ...flags], dir);
      assert.equal(lines.length, 1, lines.join('\n'));
      assert.match(lines[0], expected);
    }
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

describe('tollgate serve: SIGTERM with a request in flight', () => {
  let stub: Stub | undefined;
  after(() => stub?.close());

  test('the request in flight completes with 200, new connections are refused, the process exits 0', async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    // The model server answers only when the test says so: the request is in flight for as long as the test needs.
    stub = await startStub(async ({ res }) => {
      await released;
      json(res, 200, chatAnswer('the slow answer', 'm'));
    });
    const dir = await tempDir();
    const file = join(dir, 'gateway.yaml');
    await writeFile(file, poolAndModelYaml(stub.url));
    const [port, adminPort] = await freePorts(2);
    const cli = runCli(['serve', '--config', file, '--port', String(port), '--admin-port', String(adminPort), '--db', `sqlite:${join(dir, 't.db')}`], dir);
    try {
      await untilPrinted(cli, /tollgate is serving/, 'serve');
      const url = `http://127.0.0.1:${port}`;
      assert.equal(statusOf(await send(`${url}/v1/models`)), 200, 'the gateway answers before SIGTERM');

      let settled = false;
      const inflight = send(`${url}/v1/chat/completions`, chat('m')).finally(() => (settled = true));
      await waitFor(() => stub!.requests.length === 1, START_MS, 'the request reaching the model server', 10);

      cli.child.kill('SIGTERM');
      await untilPrinted(cli, /"msg":"shutting down"/, 'the shutdown log line');
      const shutdown = JSON.parse(cli.stdout.split('\n').find((l) => l.includes('"msg":"shutting down"'))!);
      assert.equal(shutdown.signal, 'SIGTERM');
      assert.equal(shutdown.inflight, 1);

      // The listener closes in the same turn as that log line; poll only to absorb the pipe's head start.
      let probe: number | string = 'none';
      await waitFor(
        async () => {
          probe = statusOf(await send(`${url}/v1/models`));
          return probe === 'ECONNREFUSED' || probe === 503;
        },
        5000,
        'a new connection refused or answered 503',
        20,
      ).catch((err: Error) => assert.fail(`${err.message}; last outcome ${probe}`));
      assert.equal(settled, false, 'the slow request is still in flight while new connections are refused');

      release();
      const answer = await inflight;
      assert.ok('status' in answer, `the request in flight failed: ${JSON.stringify(answer)}`);
      assert.equal(answer.status, 200, answer.body);
      assert.equal(JSON.parse(answer.body).choices[0].message.content, 'the slow answer');
      assert.equal(await exitCode(cli), 0, cli.stderr);
      assert.equal(stub.requests.length, 1, 'nothing after SIGTERM reached the model server');
    } finally {
      release();
      await kill(cli.child);
    }
  });
});

describe('tollgate serve: SIGHUP', () => {
  let stub: Stub | undefined;
  after(() => stub?.close());

  // Before: Node's default, the process ended at once (the request in flight cut, nothing logged).
  test('reloads the configuration, logged, while a request in flight completes; the process serves on', async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    stub = await startStub(async ({ res }) => {
      await released;
      json(res, 200, chatAnswer('the slow answer', 'm'));
    });
    const dir = await tempDir();
    const file = join(dir, 'gateway.yaml');
    await writeFile(file, poolAndModelYaml(stub.url));
    const [port, adminPort] = await freePorts(2);
    const cli = runCli(['serve', '--config', file, '--port', String(port), '--admin-port', String(adminPort), '--db', `sqlite:${join(dir, 't.db')}`], dir);
    try {
      await untilPrinted(cli, /tollgate is serving/, 'serve');
      const url = `http://127.0.0.1:${port}`;
      const inflight = send(`${url}/v1/chat/completions`, chat('m'));
      await waitFor(() => stub!.requests.length === 1, START_MS, 'the request reaching the model server', 10);
      // The files are unchanged: the watch would not reload them, the signal does.
      cli.child.kill('SIGHUP');
      await untilPrinted(cli, /"msg":"reloading the configuration"/, 'the SIGHUP log line');
      await untilPrinted(cli, /"msg":"configuration reloaded"/, 'the reload');
      assert.equal(JSON.parse(cli.stdout.split('\n').find((l) => l.includes('"msg":"reloading the configuration"'))!).signal, 'SIGHUP');
      assert.equal(statusOf(await send(`${url}/v1/models`)), 200);
      release();
      const answer = await inflight;
      assert.ok('status' in answer, `the request in flight failed: ${JSON.stringify(answer)}`);
      assert.equal(answer.status, 200, answer.body);
      assert.equal(cli.child.exitCode, null, 'still running');
    } finally {
      release();
      await kill(cli.child);
    }
  });
});

describe('tollgate demo', () => {
  // Before: exit code 1 with the gateway's or Node's own words ("listen EADDRINUSE", "options.port should be >= 0 and
  // < 65536"), naming no flag.
  test('a port it cannot use (--port, --admin-port, --sim-port taken, a fleet past 65535): exit code 2 and one line naming the flag', async () => {
    const dir = await tempDir();
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const takenPort = (taken.address() as { port: number }).port;
    try {
      for (const flag of ['--port', '--admin-port', '--sim-port']) {
        const [port, adminPort] = await freePorts(2);
        const ports = { '--port': port, '--admin-port': adminPort, '--sim-port': 0, [flag]: takenPort };
        const lines = await refusal(['demo', ...Object.entries(ports).flatMap(([f, p]) => [f, String(p)])], dir);
        assert.deepEqual(lines, [`tollgate: ${flag}: cannot listen on 127.0.0.1:${takenPort}: the address is already in use`]);
      }
    } finally {
      taken.close();
    }
    const lines = await refusal(['demo', '--port', '0', '--admin-port', '0', '--sim-port', '65534'], dir);
    assert.deepEqual(lines, ["tollgate demo: --sim-port 65534: the fleet's three consecutive ports run past 65535"]);
  });

  // Before: Node's default, the demo (and the fleet it started) ended at once.
  test('SIGHUP, as from a closing terminal, stops it as Ctrl-C does: exit code 0', async () => {
    const dir = await tempDir();
    const [port, adminPort] = await freePorts(2);
    const cli = runCli(['demo', '--port', String(port), '--admin-port', String(adminPort), '--sim-port', '0'], dir);
    try {
      await untilPrinted(cli, /^curl .*$/m, 'demo');
      cli.child.kill('SIGHUP');
      assert.equal(await exitCode(cli), 0, cli.stderr);
    } finally {
      await kill(cli.child);
    }
  });

  test('prints the export lines; the printed key works through the printed base URL, a wrong key gets 401; --sim-port 0 finds free ports; a restart revokes the last key', async () => {
    const dir = await tempDir();
    const [port, adminPort] = await freePorts(2);
    const start = async () => {
      const cli = runCli(['demo', '--port', String(port), '--admin-port', String(adminPort), '--sim-port', '0'], dir);
      await untilPrinted(cli, /^curl .*$/m, 'demo');
      return cli;
    };
    let cli = await start();
    try {
      const lines = cli.stdout.split('\n');
      const baseAt = lines.findIndex((l) => l.startsWith('export OPENAI_BASE_URL='));
      assert.ok(baseAt >= 0, cli.stdout);
      const base = lines[baseAt].slice('export OPENAI_BASE_URL='.length);
      assert.equal(base, `http://127.0.0.1:${port}/v1`);
      assert.match(lines[baseAt + 1], /^export OPENAI_API_KEY=tg_[0-9A-Za-z]{40}$/, 'the key line follows the base URL line');
      const key = lines[baseAt + 1].slice('export OPENAI_API_KEY='.length);
      assert.match(lines[baseAt + 2], /^curl -s http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions /);
      assert.ok(lines[baseAt + 2].startsWith(`curl -s ${base}/chat/completions `), lines[baseAt + 2]);
      const simPorts = /simulated fleet on (\d+), (\d+), (\d+)/.exec(cli.stdout)?.slice(1).map(Number);
      assert.ok(simPorts && simPorts.every((p) => p > 0), cli.stdout);

      // Both pools reach the fleet the demo started, wherever its ports are.
      for (const model of ['llama-3.1-8b', 'qwen-2.5-1.5b']) {
        // qwen is Sheddable: on a machine loaded enough that its pool's metrics are older than 200 ms when the
        // request arrives, the pool counts as saturated and sheds it (429 request_shed), as it should; ask again.
        let ok = await send(`${base}/chat/completions`, chat(model, { authorization: `Bearer ${key}` }));
        for (let i = 0; i < 20 && 'status' in ok && ok.status === 429 && ok.body.includes('request_shed'); i++) {
          await new Promise((r) => setTimeout(r, 100));
          ok = await send(`${base}/chat/completions`, chat(model, { authorization: `Bearer ${key}` }));
        }
        assert.ok('status' in ok, JSON.stringify(ok));
        assert.equal(ok.status, 200, `${model}: ${ok.body}`);
        assert.equal(typeof JSON.parse(ok.body).choices[0].message.content, 'string');
      }

      // The quickstart's product lets an app read and delete its stored Responses API answers. Its SpikeArrest
      // smooths an app's requests: one refused for coming too soon after the last is sent again.
      const auth = { authorization: `Bearer ${key}` };
      const paced = async (url: string, init: Parameters<typeof send>[1]) => {
        let o = await send(url, init);
        for (let i = 0; i < 20 && statusOf(o) === 429; i++) {
          await new Promise((r) => setTimeout(r, 250));
          o = await send(url, init);
        }
        return o;
      };
      const made = await paced(`${base}/responses`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify({ model: 'llama-3.1-8b', input: 'Hello!', max_output_tokens: 4 }) });
      assert.ok('status' in made && made.status === 200, JSON.stringify(made));
      const stored = `${base}/responses/${JSON.parse(made.body).id}`;
      assert.equal(statusOf(await paced(stored, { headers: auth })), 200);
      assert.equal(statusOf(await paced(stored, { method: 'DELETE', headers: auth })), 200);
      assert.equal(statusOf(await paced(stored, { headers: auth })), 404);

      const wrongKey = `tg_${'A'.repeat(40)}`;
      assert.notEqual(wrongKey, key);
      for (const headers of [{ authorization: `Bearer ${wrongKey}` }, { 'x-api-key': wrongKey }, {}] as Record<string, string>[]) {
        const refused = await send(`${base}/chat/completions`, chat('llama-3.1-8b', headers));
        assert.ok('status' in refused, JSON.stringify(refused));
        assert.equal(refused.status, 401, `${JSON.stringify(headers)}: ${refused.body}`);
        assert.equal(JSON.parse(refused.body).error.type, 'authentication_error');
      }

      // Ctrl-C (SIGINT) stops the gateway and the fleet it started.
      cli.child.kill('SIGINT');
      assert.equal(await exitCode(cli), 0, cli.stderr);
      for (const p of [port, adminPort, ...simPorts]) assert.equal(statusOf(await send(`http://127.0.0.1:${p}/health`)), 'ECONNREFUSED', `port ${p}`);

      // Started again in the same place: a new key, and the one printed before no longer works.
      cli = await start();
      const again = /^export OPENAI_API_KEY=(\S+)$/m.exec(cli.stdout)![1];
      assert.notEqual(again, key);
      assert.equal(statusOf(await send(`${base}/chat/completions`, chat('llama-3.1-8b', { authorization: `Bearer ${again}` }))), 200);
      assert.equal(statusOf(await send(`${base}/chat/completions`, chat('llama-3.1-8b', { authorization: `Bearer ${key}` }))), 401);
    } finally {
      await kill(cli.child);
    }
  });
});

/** Starts `serve` on a stub's pool with `env`, resolving once it logs that it serves. */
async function serveWith(env: Record<string, string>): Promise<{ cli: Cli; port: number; adminPort: number }> {
  const dir = await tempDir();
  const file = join(dir, 'gateway.yaml');
  await writeFile(file, poolAndModelYaml('http://127.0.0.1:9'));
  const [port, adminPort] = await freePorts(2);
  const cli = runCli(['serve', '--config', file, '--port', String(port), '--admin-port', String(adminPort), '--db', `sqlite:${join(dir, 't.db')}`], dir, env);
  await untilPrinted(cli, /tollgate is serving/, 'serve');
  return { cli, port, adminPort };
}

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
