// The demo's child processes: started with the demo's environment, known by the first line they
// print, stopped with SIGTERM (SIGKILL if one has not ended 5 s later), so none outlives the demo;
// should the demo itself be killed, each stops when its IPC channel to the demo closes.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  /** The first line the child printed on stdout (where it listens). */
  readonly firstLine: string;
  /** Settles when the child has exited, however it ended. */
  readonly exited: Promise<unknown>;
}

const EXIT_WITH_PARENT = fileURLToPath(new URL('./exit-with-parent.ts', import.meta.url));
const running = new Set<Child>();
/** Children being stopped by stopAll(): their exit is expected. */
const stopping = new Set<Child>();

/** Ctrl-C reaches the children too (one process group): their exit is then expected. */
let interrupted = false;
process.once('SIGINT', () => (interrupted = true));

export async function start(name: string, args: readonly string[], env: Record<string, string>, cwd: string): Promise<Child> {
  const child = spawn(process.execPath, ['--import', EXIT_WITH_PARENT, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => void (stderr = (stderr + chunk.toString()).slice(-4_000)));
  const lines = createInterface({ input: child.stdout! });
  const exited = once(child, 'exit');
  const first = once(lines, 'line').then(([line]) => line as string);
  const outcome = await Promise.race([first, exited]);
  if (typeof outcome !== 'string') throw new Error(`${name} ended (${outcome[1] ?? `exit ${outcome[0]}`}) before it was ready:\n${stderr}`);
  lines.on('line', () => {}); // keep draining stdout
  const entry: Child = { name, process: child, firstLine: outcome, exited };
  running.add(entry);
  child.once('exit', (code, signal) => {
    running.delete(entry);
    if (!stopping.has(entry) && !interrupted) process.stderr.write(`${name} ended unexpectedly (${signal ?? `exit ${code}`}):\n${stderr}\n`);
  });
  return entry;
}

/** Stops every child still running and resolves, with their pids, once all have exited. */
export async function stopAll(): Promise<number[]> {
  const children = [...running];
  await Promise.all(
    children.map(async (child) => {
      stopping.add(child);
      child.process.kill('SIGTERM');
      const timer = setTimeout(() => child.process.kill('SIGKILL'), 5_000);
      await child.exited;
      clearTimeout(timer);
    }),
  );
  return children.map((child) => child.process.pid!);
}
