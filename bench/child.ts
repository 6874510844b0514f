import { fstatSync } from 'node:fs';

// What every benchmark child process does at the end of its start: say where it listens, and stop on SIGTERM or
// when the benchmark that started it is gone (startChild keeps the child's stdin open until it exits), so a benchmark
// killed mid-run (Ctrl-C, a closed pipe) leaves no model servers or gateways running behind it. Ctrl-C and a closed
// terminal signal the whole process group (SIGINT, SIGHUP): the child stops on those too, through its close, which
// removes its temporary directories (Node's default for them ends the process at once and left them behind).

/** Prints "READY <port>" (after `lines`, e.g. "ADMIN <port>"), then stops with `close` when told to or orphaned. */
export function serveUntilStopped(port: number, close: () => Promise<unknown> | void, lines: string[] = []): void {
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    // Nobody is left to SIGKILL an orphan whose close hangs.
    setTimeout(() => process.exit(1), 10_000).unref();
    try {
      await close();
    } finally {
      process.exit(0);
    }
  };
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(signal, () => void stop());
  // Only a pipe from startChild means "the parent is gone" when it ends; run by hand, stdin may be at its end at once.
  if (fstatSync(0).isSocket() || fstatSync(0).isFIFO()) {
    process.stdin.once('end', () => void stop());
    process.stdin.once('error', () => void stop());
    process.stdin.resume();
  }
  process.stdout.write([...lines, `READY ${port}`].join('\n') + '\n');
}
