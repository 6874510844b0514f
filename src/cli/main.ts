// The `tollgate` command line: one subcommand per file; bad flags and bad config exit with code 2.
import { Command, CommanderError } from 'commander';
import { ignoreClosedPipes } from './closed-pipes.js';

/**
 * Each command's module, loaded only for that command: together they load the configuration schemas, the YAML
 * parser, undici and prom-client (~0.9 s of CPU at every start on a slow host, where `serve` alone needs ~0.5 s).
 * A command line that names none of them (help, a typo) loads them all, for the help and the suggestions.
 */
const COMMANDS: Record<string, () => Promise<Command[]>> = {
  serve: async () => [(await import('./serve.js')).serveCommand()],
  sim: async () => [(await import('./sim.js')).simCommand()],
  demo: async () => [(await import('./demo.js')).demoCommand()],
  apply: async () => [(await import('./apply.js')).applyCommand()],
  delete: async () => [(await import('./apply.js')).deleteCommand()],
  get: async () => [(await import('./get.js')).getCommand()],
  analytics: async () => [(await import('./analytics.js')).analyticsCommand()],
  validate: async () => [(await import('./validate.js')).validateCommand()],
  'copy-store': async () => [(await import('./copy-store.js')).copyStoreCommand()],
  bench: async () => [(await import('./bench.js')).benchCommand()],
};

/** The commands `argv` may run: the one it names, or all of them (in the order help lists them). */
async function commandsFor(argv: string[]): Promise<Command[]> {
  if (argv[0] !== undefined && Object.hasOwn(COMMANDS, argv[0])) return COMMANDS[argv[0]]();
  return (await Promise.all(Object.values(COMMANDS).map((load) => load()))).flat();
}

export async function main(argv: string[]): Promise<number> {
  ignoreClosedPipes();
  const program = new Command('tollgate')
    .description('inference gateway with API management built in')
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(str.split('\n')[0] + '\n') })
    .showHelpAfterError(false);
  for (const cmd of await commandsFor(argv)) {
    program.addCommand(requiredAfterUnknown(readUpToUnknownFlag(withExitOverride(cmd))));
  }
  try {
    const [first, topic] = argv;
    // Commander answers `help nonexistent` with the general help and exit code 0, as if it had been asked for.
    if (first === 'help' && topic !== undefined && !topic.startsWith('-') && !program.commands.some((c) => c.name() === topic)) {
      program.error(`error: unknown command '${topic}'`, { code: 'commander.unknownCommand', exitCode: 2 });
    }
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return exitCodeOf(err);
    throw err;
  }
  return 0;
}

/** The exit code of a command that ended with `err`. */
export function exitCodeOf(err: CommanderError): number {
  // A command's own failure (apply's refusal from the gateway, an unreachable gateway) is not a usage error: it keeps
  // the exit code the command chose.
  if (err.code.startsWith('tollgate.')) return err.exitCode;
  // Help asked for (`--help`, `help serve`) exits 0. Help shown for a missing command (`tollgate`, `tollgate bench`,
  // on stderr) is a usage error: a CI step `tollgate bench` ran nothing and succeeded.
  return err.exitCode === 0 ? 0 : 2;
}

/**
 * Commands nested under a command (`bench decision`) were created before their parent's exitOverride and do not
 * inherit it: without their own, commander ends the process with code 1 on a bad flag.
 */
function withExitOverride(cmd: Command): Command {
  for (const sub of cmd.commands) withExitOverride(sub);
  return cmd.exitOverride();
}

/**
 * Commander throws a bad value as it reads it, but names an unknown flag only after reading them all (`serve --bogus
 * --port abc` named --port, where README promises the first bad flag). A command reads its arguments only up to the
 * first flag it does not know, so anything wrong after it goes unread and commander names that flag.
 */
function readUpToUnknownFlag(cmd: Command): Command {
  for (const sub of cmd.commands) readUpToUnknownFlag(sub);
  // A command with subcommands passes the flags it does not know on to them.
  if (cmd.commands.length > 0) return cmd;
  const parseOptions = cmd.parseOptions.bind(cmd);
  cmd.parseOptions = (args) => {
    const at = firstUnknownFlag(cmd, args);
    return parseOptions(at < 0 ? args : args.slice(0, at + 1));
  };
  return cmd;
}

/** A negative number is an argument, not a flag, to commander (on a command without subcommands). */
const NEGATIVE_NUMBER = /^-(\d+|\d*\.\d+)(e[+-]?\d+)?$/;

/**
 * Where `args` has the first flag `cmd` does not know, read as commander reads them (the value of a flag that takes
 * one is never a flag); -1 when help is asked for, which commander shows whatever else is wrong.
 */
function firstUnknownFlag(cmd: Command, args: string[]): number {
  let first = -1;
  for (let i = 0; i < args.length && args[i] !== '--'; i++) {
    const arg = args[i];
    if (arg === '-h' || arg === '--help') return -1;
    if (first >= 0 || arg.length < 2 || !arg.startsWith('-') || NEGATIVE_NUMBER.test(arg)) continue;
    const flag = arg.startsWith('--') ? arg.split('=')[0] : arg.slice(0, 2);
    const option = cmd.options.find((o) => o.long === flag || o.short === flag);
    // `--dry-run=x`: a value for a flag that takes none is unknown to commander too.
    if (!option || (arg !== flag && arg.startsWith('--') && !option.required && !option.optional)) first = i;
    else if (option.required && arg === flag) i++;
  }
  return first;
}

/**
 * Commander looks for missing required options before unknown ones, so `serve --bogus` said only that --config was
 * missing and never named the flag. The required options are checked just before the action instead, once commander
 * has named any unknown flag, with commander's own message.
 */
function requiredAfterUnknown(cmd: Command): Command {
  for (const sub of cmd.commands) requiredAfterUnknown(sub);
  const required = cmd.options.filter((o) => o.mandatory);
  if (required.length === 0) return cmd;
  for (const o of required) o.mandatory = false;
  return cmd.hook('preAction', () => {
    const missing = required.find((o) => cmd.getOptionValue(o.attributeName()) === undefined);
    if (missing) cmd.error(`error: required option '${missing.flags}' not specified`, { code: 'commander.missingMandatoryOptionValue', exitCode: 2 });
  });
}
