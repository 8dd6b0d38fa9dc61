#!/usr/bin/env node
import { createRequire } from 'node:module';
import { COMMANDS } from './commands.ts';
import { createProgram, runProgram } from './program.ts';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };
process.exitCode = await runProgram(createProgram(COMMANDS, version), process.argv.slice(2));
