// For the commands' tests: a command run as main() runs it, with what it writes captured.
import { Command, CommanderError } from 'commander';
import type { AnalyticsIo } from './analytics.js';
import { exitCodeOf } from './main.js';

export interface Ran {
  code: number;
  /** Lines on stdout and stderr (commander's own messages included). */
  out: string[];
  err: string[];
}

/** Runs `tollgate <command> ARGS` for the command `make` builds with its io; `env` is all it reads of the environment. */
export async function runCommand(make: (io: AnalyticsIo) => Command, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  const out: string[] = [];
  const err: string[] = [];
  const command = make({ out: (l) => out.push(l), err: (l) => err.push(l), env, now: Date.now })
    .exitOverride()
    .configureOutput({ writeOut: (s) => out.push(s.trimEnd()), writeErr: (s) => err.push(s.trimEnd()) });
  try {
    await new Command('tollgate').exitOverride().addCommand(command).parseAsync([command.name(), ...args], { from: 'user' });
    return { code: 0, out, err };
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    return { code: exitCodeOf(e), out, err };
  }
}
