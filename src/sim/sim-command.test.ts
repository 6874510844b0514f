import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { spawnCli } from '../../test/helpers/cli-child.js';
import { waitFor } from './testing.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

// Runs `tollgate sim ...` through the real main(), in a child process so signals and exit codes are real.
function runSim(args: string[]) {
  const child = spawnCli(['sim', ...args], ROOT);
  const run = { child, stdout: '', stderr: '', exited: once(child, 'exit').then(([code]) => code as number) };
  child.stdout!.on('data', (d) => (run.stdout += d));
  child.stderr!.on('data', (d) => (run.stderr += d));
  return run;
}

async function finish(run: ReturnType<typeof runSim>) {
  const code = await run.exited;
  return { code, stdout: run.stdout, stderr: run.stderr };
}

describe('tollgate sim', () => {
  test('a bad value gives one line on stderr and exit code 2', { timeout: 120_000 }, async () => {
    // The last: a KV cache that cannot hold one sequence of the context length, which vLLM refuses to start with.
    for (const args of [['--time-scale', 'fast'], ['--replicas', '0'], ['--error-rate', '2'], ['--lora-load-time', 'soon'], ['--kv-blocks', '1']]) {
      const { code, stderr } = await finish(runSim(args));
      assert.equal(code, 2, args.join(' '));
      assert.equal(stderr.trim().split('\n').length, 1, stderr);
    }
  });

  test('--help lists the flags', async () => {
    const { code, stdout } = await finish(runSim(['--help']));
    assert.equal(code, 0);
    for (const flag of ['--replicas', '--port', '--model', '--lora', '--time-scale', '--seed', '--max-queue', '--die-after']) {
      assert.ok(stdout.includes(flag), flag);
    }
  });

  test('starts the fleet, prints one URL per server, stops on SIGTERM', async () => {
    const run = runSim(['--replicas', '2', '--port', '0', '--time-scale', '50', '--lora', 'a,b']);
    try {
      await waitFor(() => run.stdout.split('\n').length > 2, 20_000);
      const urls = run.stdout.trim().split('\n');
      assert.equal(urls.length, 2);
      for (const url of urls) assert.equal((await fetch(`${url}/health`)).status, 200);
      const models = await (await fetch(`${urls[0]}/v1/models`)).json();
      assert.deepEqual(
        models.data.map((m: { id: string }) => m.id),
        ['meta-llama/Llama-3.1-8B-Instruct', 'a', 'b'],
      );
      run.child.kill('SIGTERM');
      assert.equal(await run.exited, 0);
      await assert.rejects(fetch(`${urls[0]}/health`));
    } finally {
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
    }
  });

  // Before: `a port in X-Y is in use` without the prefix, and a refused port (EACCES) gave Node's own words, exit code 1.
  test('a port it cannot listen on: one line naming --port, as serve says it, exit code 2', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as { port: number }).port;
    try {
      const { code, stderr } = await finish(runSim(['--replicas', '2', '--port', String(port - 1)]));
      assert.equal(code, 2);
      assert.deepEqual(stderr.trim().split('\n'), [`tollgate: --port: cannot listen on 127.0.0.1:${port}: the address is already in use`]);
    } finally {
      taken.close();
    }
  });

  // Before: the spike's timer, still pending after close(), kept the process alive for the rest of the spike.
  test('SIGTERM while a request waits out a latency spike: exits at once', async () => {
    const run = runSim(['--port', '0', '--latency-spike-rate', '1', '--latency-spike-ms', '60s']);
    try {
      await waitFor(() => run.stdout.includes('\n'), 20_000);
      const url = new URL(run.stdout.trim());
      const req = request({ host: url.hostname, port: url.port, path: '/v1/completions', method: 'POST', headers: { 'content-type': 'application/json' } });
      const answered = once(req, 'response').then(() => 'answered', () => 'cut');
      req.end(JSON.stringify({ model: 'meta-llama/Llama-3.1-8B-Instruct', prompt: 'hi', max_tokens: 2 }));
      await once(req, 'finish');
      // The request is read and waiting for its spike (its answer would come in 60 s).
      await new Promise((r) => setTimeout(r, 300));
      run.child.kill('SIGTERM');
      const exit = await Promise.race([run.exited, new Promise((r) => setTimeout(r, 5000, 'still running').unref())]);
      assert.equal(exit, 0);
      assert.equal(await answered, 'cut');
    } finally {
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
    }
  });
});
