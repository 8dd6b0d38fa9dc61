import { Command, CommanderError } from 'commander';
import { isMeshError } from '../errors.ts';

/** One CLI command: a module under lib/cli/ that adds itself to the program. */
export type CommandModule = (program: Command) => void;

/**
 * The `meshfetch` program with the given commands. Every command exits non-zero with a one-line
 * message on failure; a MeshError prints its code and message, never a stack.
 */
export function createProgram(commands: readonly CommandModule[], version: string): Command {
  const program = new Command('meshfetch')
    .description('meshfetch: an in-process service mesh for Node.js')
    .version(version)
    .showHelpAfterError()
    .exitOverride();
  for (const add of commands) add(program);
  return program;
}

/** Runs the program on argv; resolves to the exit code instead of exiting, so tests can call it. */
export async function runProgram(program: Command, argv: readonly string[]): Promise<number> {
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    const message = isMeshError(err) ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
    process.stderr.write(`meshfetch: ${message}\n`);
    return 1;
  }
}
