import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../lib/cli/main.ts', import.meta.url));
export const MESH_CHILD = fileURLToPath(new URL('../fixtures/mesh-child.ts', import.meta.url));

/** A child process whose stdout (and stderr) is read as lines; `nextLine` waits for one that matches. */
export interface Child {
  readonly process: ChildProcessWithoutNullStreams;
  readonly lines: string[];
  nextLine(match: (line: string) => boolean): Promise<string>;
  /** The same for stderr (log lines): resolves with the next matching line printed from now on. */
  nextErrorLine(match: (line: string) => boolean): Promise<string>;
  /** Kills it (SIGKILL unless told otherwise) and waits for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export function startChild(args: readonly string[], env: Record<string, string>): Child {
  const child = spawn(process.execPath, args, { env: { PATH: process.env.PATH ?? '', ...env }, stdio: 'pipe' });
  const lines: string[] = [];
  const waiting = new Set<{ match: (line: string) => boolean; resolve: (line: string) => void }>();
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr = (stderr + text).slice(-4000)));
  const errorWaiting = new Set<{ match: (line: string) => boolean; resolve: (line: string) => void }>();
  createInterface({ input: child.stderr }).on('line', (line) => {
    for (const w of errorWaiting) {
      if (!w.match(line)) continue;
      errorWaiting.delete(w);
      w.resolve(line);
    }
  });
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(line);
    for (const w of waiting) {
      if (!w.match(line)) continue;
      waiting.delete(w);
      w.resolve(line);
    }
  });
  const exited = once(child, 'exit');
  return {
    process: child,
    lines,
    nextLine(match) {
      const seen = lines.find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        waiting.add({ match, resolve });
        void exited.then(() => reject(new Error(`child exited before the line was printed; stderr: ${stderr}`)));
      });
    },
    nextErrorLine(match) {
      return new Promise((resolve, reject) => {
        errorWaiting.add({ match, resolve });
        void exited.then(() => reject(new Error(`child exited before the line was logged; stderr: ${stderr}`)));
      });
    },
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/** Runs the CLI to completion: exit code, stdout and stderr. */
export async function runCli(args: readonly string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
  child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  const [code] = (await once(child, 'exit')) as [number];
  return { code, stdout, stderr };
}
