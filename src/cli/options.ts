// Shared parsing of command-line values: ports and numbers give one clear line and exit code 2 when wrong.
import { CommanderError, InvalidArgumentError } from 'commander';

export function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`"${value}" is not a port number (0-65535)`);
  return n;
}

export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`"${value}" is not a positive integer`);
  return n;
}

export function parsePositiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`"${value}" is not a positive number`);
  return n;
}

/** `pdp`, `epp` or `pdp,epp`: the parts the ext_proc listener plays. */
export function parseRoles(value: string): ('pdp' | 'epp')[] {
  const roles = value.split(',').map((r) => r.trim());
  if (roles.some((r) => r !== 'pdp' && r !== 'epp')) throw new InvalidArgumentError(`"${value}" is not a list of pdp, epp`);
  return [...new Set(roles as ('pdp' | 'epp')[])];
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/**
 * A start-up failure a flag caused (a port that is taken, a file that cannot be used): its one line on stderr, then
 * exit code 2, without a stack trace.
 */
export function flagFailure(line: string): CommanderError {
  process.stderr.write(`tollgate: ${line}\n`);
  return new CommanderError(2, 'tollgate.flags', line);
}

/** A configuration `serve` would refuse: one `tollgate: config:` line per problem (to `write`, stderr by default), then exit code 2. */
export function configFailure(problems: readonly string[], write: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): CommanderError {
  for (const p of problems) write(`tollgate: config: ${p}`);
  return new CommanderError(2, 'tollgate.config', 'invalid configuration');
}

/** Resolves on the first of `signals` (SIGINT, SIGTERM by default), so a command can shut down in order. */
export function untilSignal(signals: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM']): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      for (const s of signals) process.off(s, on);
      resolve(sig);
    };
    for (const s of signals) process.on(s, on);
  });
}
