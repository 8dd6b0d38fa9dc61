import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { Command, Option } from 'commander';
import { stringify as toYaml } from 'yaml';
import { ControlPlaneApi, ControlPlaneRequestError } from '../control-plane-client/admin.ts';
import { loadTlsMaterial } from '../tls/load.ts';
import { resolveSettings } from '../config/options.ts';
import { buildRevision } from '../control-plane/revision.ts';
import { configError, isMeshError } from '../errors.ts';
import { parsePolicyText } from '../policy/load.ts';
import type { CommandModule } from './program.ts';

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

interface Common {
  controlPlane?: string;
  output: 'text' | 'json' | 'yaml';
}

const print = (text: string): void => void process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
const printJson = (value: unknown): void => print(JSON.stringify(value, null, 2));

/**
 * The API of the control plane named by --control-plane or MESHFETCH_CONTROL_PLANE, with the token
 * and TLS files of the environment. With several replicas listed, one that cannot be reached is
 * passed over for the next (a publish is safe to repeat: the same document changes nothing).
 */
async function withApi<T>(options: Common, use: (api: ControlPlaneApi) => Promise<T>): Promise<T> {
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
function run<A extends unknown[]>(action: (...args: A) => Promise<void> | void): (...args: A) => Promise<void> {
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

function readDocument(file: string): { text: string; contentType: string } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw configError(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const yaml = ['.yaml', '.yml'].includes(extname(file).toLowerCase()) || !/^\s*\{/.test(text);
  return { text, contentType: yaml ? 'application/yaml' : 'application/json' };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

function ago(iso: string): string {
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return seconds < 120 ? `${seconds}s ago` : seconds < 7200 ? `${Math.round(seconds / 60)}m ago` : `${Math.round(seconds / 3600)}h ago`;
}

function withCommon(command: Command, formats: readonly string[] = ['text', 'json']): Command {
  return command
    .option('--control-plane <url>', 'the control plane (default: MESHFETCH_CONTROL_PLANE)')
    .addOption(new Option('-o, --output <format>', 'output format').choices(formats).default(formats[0]));
}

/** `meshfetch policy validate|get|apply|rollback|history|clients`. */
export const policyCommand: CommandModule = (program: Command) => {
  const policy = program.command('policy').description('read, check and publish the shared policy');

  withCommon(policy.command('validate <file>').description('check a policy file with the rules every client applies (no control plane needed)')).action(
    run((file: string, options: Common) => {
      const { text } = readDocument(file);
      let revision;
      try {
        revision = buildRevision(parsePolicyText(text, file), file, 'file');
      } catch (err) {
        if (options.output === 'json' && isMeshError(err)) {
          printJson({ valid: false, file, problems: err.message.split('\n').slice(1).map((line) => line.trim()) });
          process.exitCode = EXIT.refused;
          return;
        }
        throw err;
      }
      if (options.output === 'json') printJson({ valid: true, file, revision: revision.revision });
      else print(`${file}: valid (revision ${revision.revision})`);
    }),
  );

  withCommon(policy.command('get').description('print the policy in force and its revision'), ['yaml', 'json']).action(
    run(async (options: Common) => {
      const { revision, document } = await withApi(options, (api) => api.getPolicy());
      if (options.output === 'json') printJson({ revision, document });
      else print(`# revision ${revision}\n${toYaml(document)}`);
    }),
  );

  withCommon(policy.command('apply <file>').description('publish a policy file (needs MESHFETCH_ADMIN_TOKEN)'))
    .option('--if-match <revision>', 'publish only if this is still the revision in force')
    .action(
      run(async (file: string, options: Common & { ifMatch?: string }) => {
        const { text, contentType } = readDocument(file);
        const answer = await withApi(options, (api) => api.publish(text, contentType, options.ifMatch));
        if (options.output === 'json') printJson(answer);
        else print(answer.changed ? `published revision ${answer.revision} (was ${answer.previous})` : `unchanged: revision ${answer.revision} is already in force`);
      }),
    );

  withCommon(policy.command('rollback').description('publish the previous revision again, or --to one from history (needs MESHFETCH_ADMIN_TOKEN)'))
    .option('--to <revision>', 'the revision to go back to (default: the one before the current)')
    .option('--if-match <revision>', 'roll back only if this is still the revision in force')
    .action(
      run(async (options: Common & { to?: string; ifMatch?: string }) => {
        const answer = await withApi(options, (api) => api.rollback(options.to, options.ifMatch));
        if (options.output === 'json') printJson(answer);
        else print(`rolled back to revision ${answer.revision} (was ${answer.previous})`);
      }),
    );

  withCommon(policy.command('history').description('the revisions kept for rollback, newest first')).action(
    run(async (options: Common) => {
      const revisions = await withApi(options, (api) => api.history());
      if (options.output === 'json') return printJson(revisions);
      print(table([['REVISION', 'SOURCE', 'PUBLISHED', ''], ...revisions.map((r) => [r.revision, r.source, ago(r.publishedAt), r.current ? 'in force' : ''])]));
    }),
  );

  withCommon(policy.command('clients').description('each client: service, instance, revision applied, last error, last seen')).action(
    run(async (options: Common) => {
      const clients = await withApi(options, (api) => api.clients());
      if (options.output === 'json') return printJson(clients);
      if (clients.length === 0) return print('no clients have reported yet');
      const rows = clients.map((c) => [
        c.service,
        c.instance,
        c.revision ?? '-',
        c.watching > 0 ? 'yes' : 'no',
        ago(c.lastSeen),
        c.rejectedRevision ? `refused ${c.rejectedRevision}: ${(c.lastError ?? '').split('\n').join(' ').slice(0, 120)}` : '',
      ]);
      print(table([['SERVICE', 'INSTANCE', 'REVISION', 'WATCHING', 'LAST SEEN', 'LAST ERROR'], ...rows]));
    }),
  );
};
