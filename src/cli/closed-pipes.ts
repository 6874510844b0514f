// A reader that stops reading (`tollgate get ... | head -1`) ends only the output, not the command: as with git and
// kubectl, the command finishes its work and exits with its own code, without a stack trace.

/**
 * Node ignores SIGPIPE, so a write to a closed pipe fails with EPIPE instead, as an 'error' event that nothing
 * handled: the process crashed with exit code 1, and an apply the gateway had committed reported a failure.
 */
function ignoreClosedPipe(err: NodeJS.ErrnoException): void {
  if (err.code !== 'EPIPE') throw err;
}

/** Lets later writes to a closed stdout or stderr go nowhere (the stream is destroyed on the first). Idempotent. */
export function ignoreClosedPipes(): void {
  for (const stream of [process.stdout, process.stderr]) {
    if (!stream.listeners('error').includes(ignoreClosedPipe)) stream.on('error', ignoreClosedPipe);
  }
}
