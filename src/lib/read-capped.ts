// Reading a body someone else sends (a callout's answer, a /metrics page, a JWKS) with a size limit: past it, reading
// stops and the rest is never held in memory.

/**
 * The body's bytes, or `tooLarge()` thrown once more than `max` arrived. Leaving the loop cancels a web stream; a
 * Node stream (undici's body) is destroyed.
 * @example const page = (await readCapped(res.body, 4 << 20, () => new Error('too large'))).toString('utf8');
 */
export async function readCapped(body: AsyncIterable<Uint8Array> & { destroy?: () => void }, max: number, tooLarge: () => Error): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > max) {
      body.destroy?.();
      throw tooLarge();
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}
