// Errors that say this process ran short (descriptors, socket buffers, memory), not what it was working on.

const SHORTAGES = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM']);

/**
 * Whether `err` is this process running short: nothing to hold against a model server it could not connect to, nor a
 * change to read in files it could not look at. It passes once what it holds is let go.
 */
export function isProcessShortage(err: unknown): boolean {
  return SHORTAGES.has((err as { code?: unknown } | undefined)?.code as string);
}
