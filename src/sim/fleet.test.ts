import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { startSimFleet } from './fleet.js';
import { postJson } from './testing.js';

describe('startSimFleet', () => {
  test('replicas on consecutive loopback ports, each serving, all closed together', async () => {
    const fleet = await startSimFleet({ replicas: 3, model: 'm', loras: ['x'], timeScale: 50 });
    try {
      assert.equal(fleet.urls.length, 3);
      const ports = fleet.urls.map((u) => Number(new URL(u).port));
      assert.deepEqual(ports, [ports[0], ports[0] + 1, ports[0] + 2]);
      assert.ok(fleet.urls.every((u) => u.startsWith('http://127.0.0.1:')));
      for (const url of fleet.urls) {
        const res = await postJson(`${url}/v1/chat/completions`, { model: 'x', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
        assert.equal(res.status, 200);
      }
      assert.deepEqual(
        fleet.servers.map((s) => s.state().requests),
        [1, 1, 1],
      );
    } finally {
      await fleet.close();
    }
    await assert.rejects(fetch(`${fleet.urls[0]}/health`));
  });

  test('a taken fixed port fails the start and leaves nothing running', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const taken = (blocker.address() as { port: number }).port;
    try {
      await assert.rejects(startSimFleet({ replicas: 2, port: taken - 1 }), { code: 'EADDRINUSE' });
      await assert.rejects(fetch(`http://127.0.0.1:${taken - 1}/health`));
    } finally {
      blocker.close();
    }
  });
});
