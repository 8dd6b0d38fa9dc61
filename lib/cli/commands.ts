import { certsCommand } from './certs.ts';
import { controlPlaneCommand } from './control-plane.ts';
import { policyCommand } from './policy.ts';
import type { CommandModule } from './program.ts';
import { routesCommand } from './routes.ts';
import { statCommand } from './stat.ts';

/**
 * Every command of the CLI; each lives in its own module under lib/cli/. Kept apart from main.ts,
 * which runs the program, so that a test can build the program (test/docs checks each command and
 * option is documented).
 */
export const COMMANDS: readonly CommandModule[] = [
  controlPlaneCommand,
  policyCommand,
  certsCommand,
  statCommand,
  routesCommand,
];
