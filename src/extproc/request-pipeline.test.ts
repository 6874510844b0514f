// The request path over ext_proc as a policy sees it: the body it reads, and the limit it reads it with.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newContext, type DataPlane } from '../gateway/data-plane.js';
import { GatewayError } from '../gateway/errors.js';
import { decideRequest } from './request-pipeline.js';

test('an intercept reading the body with a lower limit gets 413 for a body over it, and the body under it', async () => {
  const reads: number[] = [];
  const decide = async (body: Buffer) => {
    const ctx = newContext('POST', '/oauth/token', {}, undefined);
    // The token endpoint's way: answer from the body, read with its own limit.
    ctx.hooks = {
      intercept: async (c) => {
        reads.push((await c.readBody!(16)).length);
        c.directResponse = { status: 200, headers: {}, body: '' };
      },
    };
    return decideRequest({} as DataPlane, ctx, async () => body, 0);
  };
  await assert.rejects(decide(Buffer.alloc(17)), (err: unknown) => err instanceof GatewayError && err.status === 413 && err.code === 'body_too_large');
  assert.equal((await decide(Buffer.alloc(16))).kind, 'reply');
  assert.deepEqual(reads, [16]);
});
