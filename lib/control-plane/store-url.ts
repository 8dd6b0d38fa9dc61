import { configError } from '../errors.ts';

/** Where the control plane keeps its policy, from `--store` or MESHFETCH_STORE. */
export type StoreLocation = { readonly kind: 'file'; readonly path: string } | { readonly kind: 'etcd'; readonly hosts: readonly string[]; readonly prefix: string };

const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]+\]):(\d{1,5})$/;
const PREFIX = /^[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/;

/**
 * Parses `file:<path>` or `etcd://host:port[,host:port…]/prefix`. `where` names the flag or variable
 * in the error (MESHFETCH_CONFIG) that says what is wrong with the value.
 */
export function parseStoreUrl(value: string, where: string): StoreLocation {
  const shown = `${where}=${JSON.stringify(value.length > 200 ? `${value.slice(0, 200)}…` : value)}`;
  if (value.startsWith('file:')) {
    if (value.length === 5) throw configError(`${shown}: expected file:<path>`);
    return { kind: 'file', path: value.slice(5) };
  }
  if (!value.startsWith('etcd://')) throw configError(`${shown}: expected file:<path> or etcd://host:2379[,host:2379…]/prefix`);
  const rest = value.slice('etcd://'.length);
  const slash = rest.indexOf('/');
  if (slash === -1) throw configError(`${shown}: name a key prefix after the hosts (etcd://host:2379/meshfetch)`);
  const hosts = rest.slice(0, slash).split(',');
  for (const host of hosts) {
    const match = HOST.exec(host);
    if (!match || Number(match[1]) < 1 || Number(match[1]) > 65535) throw configError(`${shown}: ${JSON.stringify(host)} is not host:port`);
  }
  const prefix = rest.slice(slash + 1).replace(/\/+$/, '');
  if (!PREFIX.test(prefix)) throw configError(`${shown}: the key prefix ${JSON.stringify(prefix.slice(0, 200))} must be path segments of letters, digits, ".", "_" or "-"`);
  return { kind: 'etcd', hosts: hosts.map((host) => `http://${host}`), prefix };
}
