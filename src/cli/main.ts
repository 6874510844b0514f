// The `tollgate` command line: one subcommand per file; bad flags and bad config exit with code 2.
import { Command, CommanderError } from 'commander';
import { serveCommand } from './serve.js';
import { simCommand } from './sim.js';
import { demoCommand } from './demo.js';
import { benchCommand } from './bench.js';
import { applyCommand, deleteCommand } from './apply.js';
import { getCommand } from './get.js';
import { analyticsCommand } from './analytics.js';

export async function main(argv: string[]): Promise<number> {
  const program = new Command('tollgate')
    .description('inference gateway with API management built in')
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(str.split('\n')[0] + '\n') })
    .showHelpAfterError(false);
  for (const cmd of [serveCommand(), simCommand(), demoCommand(), applyCommand(), deleteCommand(), getCommand(), analyticsCommand(), benchCommand()]) {
    program.addCommand(requiredAfterUnknown(withExitOverride(cmd)));
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      // A command's own failure (apply's refusal from the gateway, an unreachable gateway) is not a usage error: it
      // keeps the exit code the command chose.
      if (err.code.startsWith('tollgate.')) return err.exitCode;
      return err.exitCode === 0 ? 0 : 2;
    }
    throw err;
  }
  return 0;
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
