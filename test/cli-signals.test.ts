// `tollgate serve` and `tollgate demo` as real child processes (run from source through tsx): shutdown on SIGTERM with
// a request in flight, a reload on SIGHUP, the demo's ports, printed credentials and signals.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { chatAnswer } from '../src/policy/caching/testing.js';
import { waitFor } from '../src/sim/testing.js';
import { json, startStub, type Stub } from './helpers/stub-upstream.js';
import { poolAndModelYaml } from './helpers/manifests.js';
import { chat, exitCode, freePorts, kill, refusal, runCli, send, START_MS, statusOf, tempDir, untilPrinted } from './helpers/cli-run.js';

/**
 * `serve` in front of a model server that answers only when the test says so (`release`): a request is in flight for
 * as long as the test needs.
 */
async function serveHeldAnswers() {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const stub = await startStub(async ({ res }) => {
    await released;
    json(res, 200, chatAnswer('the slow answer', 'm'));
  });
  const dir = await tempDir();
  const file = join(dir, 'gateway.yaml');
  await writeFile(file, poolAndModelYaml(stub.url));
  const [port, adminPort] = await freePorts(2);
  const cli = runCli(['serve', '--config', file, '--port', String(port), '--admin-port', String(adminPort), '--db', `sqlite:${join(dir, 't.db')}`], dir);
  return { stub, release, port, cli };
}

describe('tollgate serve: SIGTERM with a request in flight', () => {
  let stub: Stub | undefined;
  after(() => stub?.close());

  test('the request in flight completes with 200, new connections are refused, the process exits 0', async () => {
    const served = await serveHeldAnswers();
    stub = served.stub;
    const { release, port, cli } = served;
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
    const served = await serveHeldAnswers();
    stub = served.stub;
    const { release, port, cli } = served;
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

  // Before: exit code 1 with a bare "EACCES ... mkdir", after the fleet had started.
  test('a working directory it cannot write: exit code 2 and one line saying so, before the fleet starts', async () => {
    const dir = await tempDir();
    // A directory that cannot be made, even by root: where .tollgate should go is a file.
    await writeFile(join(dir, '.tollgate'), '');
    const [port, adminPort] = await freePorts(2);
    const lines = await refusal(['demo', '--port', String(port), '--admin-port', String(adminPort), '--sim-port', '0'], dir);
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0], /^tollgate demo: cannot create .*\.tollgate: .*; run the demo from a directory you can write$/);
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
