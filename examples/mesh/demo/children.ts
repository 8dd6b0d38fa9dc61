// The demo's child processes: started with the demo's environment, known by the first line they
// print, stopped with SIGTERM (SIGKILL if one has not ended 5 s later), so none outlives the demo.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

export interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  /** The first line the child printed on stdout (where it listens). */
  readonly firstLine: string;
}

const running = new Set<Child>();
/** Children being stopped by stopAll(): their exit is expected. */
const stopping = new Set<Child>();

export async function start(name: string, args: readonly string[], env: Record<string, string>, cwd: string): Promise<Child> {
  const child = spawn(process.execPath, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => void (stderr = (stderr + chunk.toString()).slice(-4_000)));
  const lines = createInterface({ input: child.stdout! });
  const exited = once(child, 'exit').then(([code, signal]) => `${name} ended (${signal ?? `exit ${code}`}) before it was ready:\n${stderr}`);
  const first = once(lines, 'line').then(([line]) => line as string);
  const outcome = await Promise.race([first, exited.then((why) => new Error(why))]);
  if (outcome instanceof Error) throw outcome;
  lines.on('line', () => {}); // keep draining stdout
  const entry: Child = { name, process: child, firstLine: outcome };
  running.add(entry);
  child.once('exit', (code, signal) => {
    running.delete(entry);
    if (!stopping.has(entry)) process.stderr.write(`${name} ended unexpectedly (${signal ?? `exit ${code}`}):\n${stderr}\n`);
  });
  return entry;
}

/** Stops every child still running, newest first, and resolves once all have exited. */
export async function stopAll(): Promise<number[]> {
  const children = [...running].reverse();
  const pids = children.map((c) => c.process.pid!);
  for (const child of children) {
    stopping.add(child);
    const exited = once(child.process, 'exit');
    child.process.kill('SIGTERM');
    const timer = setTimeout(() => child.process.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
  return pids;
}
