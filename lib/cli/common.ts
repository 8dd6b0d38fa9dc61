import { Command, Option } from 'commander';
import { ControlPlaneApi, ControlPlaneRequestError } from '../control-plane-client/admin.ts';
import { resolveSettings } from '../config/options.ts';
import { loadTlsMaterial } from '../tls/load.ts';
import { configError, isMeshError } from '../errors.ts';
import { fittedTable } from './readable.ts';

/** Exit codes scripts can branch on. */
export const EXIT = {
  ok: 0,
  /** The document is invalid, or the control plane refused the request (4xx other than 412). */
  refused: 1,
  /** If-Match named a revision that is no longer current: someone else published first. */
  conflict: 2,
  /** The control plane could not be reached, or failed (5xx). */
  unreachable: 3,
} as const;

export interface Common {
  controlPlane?: string;
  output: 'text' | 'json' | 'yaml';
}

export const print = (text: string): void => void process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
export const printJson = (value: unknown): void => print(JSON.stringify(value, null, 2));

/**
 * The API of the control plane named by --control-plane or MESHFETCH_CONTROL_PLANE, with the token
 * and TLS files of the environment. With several replicas listed, one that cannot be reached is
 * passed over for the next (a publish is safe to repeat: the same document changes nothing).
 */
export async function withApi<T>(options: Common, use: (api: ControlPlaneApi) => Promise<T>): Promise<T> {
  const given = options.controlPlane ?? process.env.MESHFETCH_CONTROL_PLANE?.trim();
  if (!given) throw configError('--control-plane: not given, and MESHFETCH_CONTROL_PLANE is not set');
  const where = options.controlPlane !== undefined ? '--control-plane' : 'MESHFETCH_CONTROL_PLANE';
  let settings;
  try {
    settings = resolveSettings({ controlPlane: given }, process.env);
  } catch (err) {
    throw isMeshError(err) ? configError(err.message.replace('createMesh option controlPlane', where)) : err;
  }
  const { adminToken, tls, controlPlanes } = settings;
  const material = tls.cert || tls.key || tls.ca ? loadTlsMaterial(tls) : {};
  for (let i = 0; ; i++) {
    const api = new ControlPlaneApi(controlPlanes[i]!, adminToken, material);
    try {
      return await use(api);
    } catch (err) {
      const unreachable = err instanceof ControlPlaneRequestError && err.status === undefined;
      if (!unreachable || i === controlPlanes.length - 1) throw err;
    } finally {
      await api.close();
    }
  }
}

/** Runs a subcommand; a refusal prints its message and problems on stderr and sets the exit code. */
export function run<A extends unknown[]>(action: (...args: A) => Promise<void> | void): (...args: A) => Promise<void> {
  return async (...args) => {
    try {
      await action(...args);
    } catch (err) {
      if (!(err instanceof ControlPlaneRequestError) && !isMeshError(err)) throw err;
      const lines = err.message.split('\n');
      const problems = err instanceof ControlPlaneRequestError ? err.problems : lines.slice(1).map((line) => line.trim());
      process.stderr.write(`meshfetch: ${lines[0]}\n${problems.map((p) => `  ${p}\n`).join('')}`);
      process.exitCode = exitCodeFor(err);
    }
  };
}

function exitCodeFor(err: Error): number {
  if (!(err instanceof ControlPlaneRequestError)) return EXIT.refused;
  if (err.status === undefined || err.status >= 500) return EXIT.unreachable;
  return err.status === 412 ? EXIT.conflict : EXIT.refused;
}

/** Rows of cells padded to aligned columns, two spaces apart. */
export function table(rows: string[][]): string {
  return fittedTable(rows, [], Infinity);
}

/** --control-plane and -o on a command. */
export function withCommon(command: Command, formats: readonly string[] = ['text', 'json']): Command {
  return command
    .option('--control-plane <url>', 'the control plane (default: MESHFETCH_CONTROL_PLANE)')
    .addOption(new Option('-o, --output <format>', 'output format').choices(formats).default(formats[0]));
}
