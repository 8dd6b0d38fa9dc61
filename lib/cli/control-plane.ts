import type { Command } from 'commander';
import { startControlPlane } from '../control-plane/server.ts';
import { wholeNumber } from './arguments.ts';
import type { CommandModule } from './program.ts';

/** `meshfetch control-plane --policy FILE`: runs the config service until SIGINT or SIGTERM. */
export const controlPlaneCommand: CommandModule = (program: Command) => {
  program
    .command('control-plane')
    .description('serve a policy file to every mesh client: reads, live watch, publishes, rollbacks, client reports')
    .requiredOption('--policy <file>', 'the policy file (YAML or JSON); it is the store, and hand edits publish')
    .option('--port <n>', 'port to listen on', wholeNumber('--port'), 7878)
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--history <n>', 'revisions kept for rollback', wholeNumber('--history'), 10)
    .action(async (options: { policy: string; port: number; host: string; history: number }) => {
      const cp = await startControlPlane({ policyFile: options.policy, port: options.port, host: options.host, historyLimit: options.history });
      process.stdout.write(`control plane listening on ${cp.url} (revision ${cp.revision()})\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await cp.close();
    });
};
