// Reading a body someone else sends (a callout's answer, a /metrics page, a JWKS) with a size limit: past it, reading
// stops and the rest is never held in memory.

type Body = AsyncIterable<Uint8Array> & { destroy?: () => void };

/**
 * The body's bytes, or `tooLarge()` thrown once more than `max` arrived. Leaving the loop cancels a web stream; a
 * Node stream (undici's body) is destroyed.
 * @example const page = (await readCapped(res.body, 4 << 20, () => new Error('too large'))).toString('utf8');
 */
export async function readCapped(body: Body, max: number, tooLarge: () => Error): Promise<Buffer> {
  const { chunks, size, cut } = await readUpTo(body, max);
  if (cut) throw tooLarge();
  return Buffer.concat(chunks, size);
}

/**
 * The body's first `max` bytes at most, and whether more came (`cut`): reading stops there, as readCapped's does.
 * @example const { bytes, cut } = await readPrefix(res.body, 4 << 20);
 */
export async function readPrefix(body: Body, max: number): Promise<{ bytes: Buffer; cut: boolean }> {
  const { chunks, size, cut } = await readUpTo(body, max);
  return { bytes: Buffer.concat(chunks, size), cut };
}

async function readUpTo(body: Body, max: number): Promise<{ chunks: Uint8Array[]; size: number; cut: boolean }> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    if (size + chunk.length > max) {
      chunks.push(chunk.subarray(0, max - size));
      body.destroy?.();
      return { chunks, size: max, cut: true };
    }
    size += chunk.length;
    chunks.push(chunk);
  }
  return { chunks, size, cut: false };
}
