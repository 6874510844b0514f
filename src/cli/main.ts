// The `tollgate` command line: one subcommand per file; bad flags and bad config exit with code 2.
import { Command, CommanderError } from 'commander';
import { serveCommand } from './serve.js';
import { simCommand } from './sim.js';
import { demoCommand } from './demo.js';
import { benchCommand } from './bench.js';
import { applyCommand } from './apply.js';
import { analyticsCommand } from './analytics.js';

export async function main(argv: string[]): Promise<number> {
  const program = new Command('tollgate')
    .description('inference gateway with API management built in')
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(str.split('\n')[0] + '\n') })
    .showHelpAfterError(false);
  for (const cmd of [serveCommand(), simCommand(), demoCommand(), applyCommand(), analyticsCommand(), benchCommand()]) {
    program.addCommand(cmd.exitOverride());
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      // A refusal from the gateway is not a usage error: apply keeps its own exit code there.
      if (err.code === 'tollgate.apply') return err.exitCode;
      return err.exitCode === 0 ? 0 : 2;
    }
    throw err;
  }
  return 0;
}
