// A tracer a reload replaced (its span-export thread, ~15 MB) is shut down as soon as the requests begun with it are
// over: at once when none is in flight. It was kept for upstream.responseTimeout + flowControl.maxWait (10.5 min by
// default) whatever was in flight, a thread per reload that changed a tracing setting. A request in flight across the
// reload still ends its spans on the tracer it began with, and they are exported.
// own process: it counts the process's span-export threads.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { waitFor } from '../src/sim/testing.js';
import { poolAndModelYaml } from './helpers/manifests.js';
import { startOtlpReceiver, type OtlpReceiver } from './helpers/otlp-receiver.js';
import { json, startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const CHAT = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });

function workerThreads(): number {
  return (process.report.getReport() as unknown as { workers: unknown[] }).workers.length;
}

let receiver: OtlpReceiver;
let stub: Stub;
let dir: string;
let gw: Gateway;
let threadsBefore: number;
/** Requests the model server holds until the test lets them go. */
const held: (() => void)[] = [];
let hold = false;

/** Settings whose spans name service `service`; each change of it is a new tracer. Exported only at its shutdown. */
const writeSettings = (service: string) =>
  writeFileSync(
    join(dir, 'settings.yaml'),
    `apiVersion: tollgate.dev/v1alpha1\nkind: GatewaySettings\nmetadata: { name: settings }\nspec: { analytics: { enabled: false },
      tracing: { endpoint: "${receiver.endpoint}", exportInterval: 1h, serviceName: ${service} } }\n`,
  );

const chat = async () => {
  const r = await request(`${gw.url}/v1/chat/completions`, { method: 'POST', body: CHAT });
  return `${r.statusCode} ${await r.body.text()}`;
};

/** The names of the spans tracer `service` exported. */
const exported = (service: string) => receiver.exports.filter((e) => e.serviceName === service).flatMap((e) => e.spans.map((s) => s.name));

/** A request the model server holds, once it is there (wrapped: an async function's promise would wait for it). */
async function heldRequest(): Promise<{ answer: Promise<string> }> {
  hold = true;
  const answer = chat();
  await waitFor(() => held.length === 1, 5000, 'the request at the model server');
  hold = false;
  return { answer };
}

before(async () => {
  threadsBefore = workerThreads();
  receiver = await startOtlpReceiver();
  stub = await startStub(async (r) => {
    if (hold) await new Promise<void>((resolve) => held.push(resolve));
    json(r.res, 200, { choices: [{ index: 0, message: { role: 'assistant', content: 'hi' } }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } });
  });
  dir = mkdtempSync(join(tmpdir(), 'tollgate-retire-tracer-'));
  writeFileSync(join(dir, 'models.yaml'), poolAndModelYaml(stub.url));
  writeSettings('first');
  gw = await startGateway({ configPaths: [dir], ...LOOPBACK });
});

after(async () => {
  await gw.close();
  await stub.close();
  receiver.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a request in flight across the reload ends its spans on its tracer, which is shut down (exporting them) once it is over', async () => {
  const { answer: inflight } = await heldRequest();
  writeSettings('second');
  assert.equal(await gw.reload(), true);
  assert.match(await chat(), /^200 /, 'a request after the reload');
  assert.deepEqual(exported('first'), [], 'nothing is exported while its request is in flight');
  held.shift()!();
  assert.match(await inflight, /^200 /);
  await waitFor(() => exported('first').length > 0, 20_000, "the replaced tracer's shutdown");
  assert.deepEqual(exported('first').sort(), ['POST /v1/chat/completions', 'chat m', 'pick', 'policies'], 'the whole request, on the tracer it began with');
});

test('with nothing in flight, the replaced tracer is shut down at once', async () => {
  writeSettings('third');
  assert.equal(await gw.reload(), true);
  // The request made after the first reload, on tracer "second".
  await waitFor(() => exported('second').length > 0, 20_000, "the replaced tracer's shutdown");
  assert.ok(exported('second').includes('POST /v1/chat/completions'));
});

test("the gateway's close shuts down a replaced tracer still waiting for its request, after that request", async () => {
  const { answer: inflight } = await heldRequest();
  writeSettings('fourth');
  assert.equal(await gw.reload(), true);
  const closed = gw.close();
  held.shift()!();
  assert.match(await inflight, /^200 /, 'the request in flight finishes within the grace period');
  await closed;
  assert.ok(exported('third').includes('POST /v1/chat/completions'), "its spans were exported at the tracer's shutdown");
  assert.equal(workerThreads(), threadsBefore, 'no span-export thread is left');
});
