import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import type { Command } from 'commander';
import { stringify as toYaml } from 'yaml';
import { buildRevision } from '../control-plane/revision.ts';
import { configError, isMeshError } from '../errors.ts';
import { EXIT, print, printJson, run, table, withApi, withCommon } from './common.ts';
import type { Common } from './common.ts';
import { parsePolicyText } from '../policy/load.ts';
import type { CommandModule } from './program.ts';

export { EXIT } from './common.ts';

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

function ago(iso: string): string {
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return seconds < 120 ? `${seconds}s ago` : seconds < 7200 ? `${Math.round(seconds / 60)}m ago` : `${Math.round(seconds / 3600)}h ago`;
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
