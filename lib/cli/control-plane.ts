import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { configError } from '../errors.ts';
import { startControlPlane } from '../control-plane/server.ts';
import { parseStoreUrl } from '../control-plane/store-url.ts';
import { wholeNumber } from './arguments.ts';
import type { CommandModule } from './program.ts';

function readPem(file: string, option: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw configError(`${option} ${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/**
 * The store, from --store or MESHFETCH_STORE (checked here so the error names which), and the
 * policy file: the store itself, or the seed of an empty etcd store.
 */
function storeChoice(options: { policy?: string; store?: string }): { policyFile?: string; storeUrl?: string } {
  const fromFlag = options.store !== undefined;
  const storeUrl = options.store ?? (process.env.MESHFETCH_STORE?.trim() || undefined);
  if (storeUrl === undefined) {
    if (options.policy === undefined) throw configError('control-plane: give --policy FILE (or --store file:FILE or etcd://host:2379/prefix, or set MESHFETCH_STORE)');
    return { policyFile: options.policy };
  }
  const location = parseStoreUrl(storeUrl, fromFlag ? '--store' : 'MESHFETCH_STORE');
  if (location.kind === 'file') return { policyFile: options.policy ?? location.path };
  return { storeUrl, ...(options.policy !== undefined && { policyFile: options.policy }) };
}

function serverTls(options: { tlsCert?: string; tlsKey?: string; clientCa?: string }): { cert: string; key: string; ca?: string } | undefined {
  if (options.tlsCert === undefined && options.tlsKey === undefined) {
    if (options.clientCa !== undefined) throw configError('--client-ca: needs --tls-cert and --tls-key');
    return undefined;
  }
  if (options.tlsCert === undefined || options.tlsKey === undefined) throw configError('--tls-cert and --tls-key: give both');
  return {
    cert: readPem(options.tlsCert, '--tls-cert'),
    key: readPem(options.tlsKey, '--tls-key'),
    ...(options.clientCa !== undefined && { ca: readPem(options.clientCa, '--client-ca') }),
  };
}

/** `meshfetch control-plane --policy FILE`: runs the config service until SIGINT or SIGTERM. */
export const controlPlaneCommand: CommandModule = (program: Command) => {
  program
    .command('control-plane')
    .description('serve a policy file to every mesh client: reads, live watch, publishes, rollbacks, client reports')
    .option('--policy <file>', 'the policy file (YAML or JSON); it is the store, and hand edits publish; with an etcd store, it seeds an empty one')
    .option('--store <url>', 'where policy is kept: file:<path> or etcd://host:2379[,host:2379…]/prefix (default: MESHFETCH_STORE)')
    .option('--client-lease <seconds>', 'with etcd: how long this replica\'s client records outlive it', wholeNumber('--client-lease'), 10)
    .option('--port <n>', 'port to listen on', wholeNumber('--port'), 7878)
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--history <n>', 'revisions kept for rollback, the one in force included', wholeNumber('--history', 1), 10)
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM)')
    .option('--tls-key <file>', 'the key of --tls-cert (PEM)')
    .option('--client-ca <file>', 'require a client certificate chaining to this CA on every request')
    .action(async (options: { policy?: string; store?: string; clientLease: number; port: number; host: string; history: number; tlsCert?: string; tlsKey?: string; clientCa?: string }) => {
      const cp = await startControlPlane({
        ...storeChoice(options),
        clientLeaseTtl: options.clientLease,
        port: options.port,
        host: options.host,
        historyLimit: options.history,
        tls: serverTls(options),
      });
      process.stdout.write(`control plane listening on ${cp.url} (revision ${cp.revision()})\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await cp.close();
    });
};
