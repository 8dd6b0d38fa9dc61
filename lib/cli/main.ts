#!/usr/bin/env node
import { createRequire } from 'node:module';
import { certsCommand } from './certs.ts';
import { createProgram, runProgram } from './program.ts';
import type { CommandModule } from './program.ts';
import { controlPlaneCommand } from './control-plane.ts';
import { policyCommand } from './policy.ts';
import { routesCommand } from './routes.ts';
import { statCommand } from './stat.ts';

/** Every command of the CLI; each lives in its own module under lib/cli/. */
const COMMANDS: readonly CommandModule[] = [
  controlPlaneCommand,
  policyCommand,
  certsCommand,
  statCommand,
  routesCommand,
];

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };
process.exitCode = await runProgram(createProgram(COMMANDS, version), process.argv.slice(2));
