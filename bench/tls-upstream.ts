/**
 * The upstream of the TLS bench (bench/tls.ts), in a child process so that its CPU is not the
 * client's: two https servers answering the 64-byte JSON body, one plain (server certificate only)
 * and one mTLS (client certificate required from the mesh CA). Both refuse session tickets, so a
 * new connection is always a full handshake; kept-alive connections live as long as the bench.
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:https';
import type { ServerOptions } from 'node:https';
import type { AddressInfo } from 'node:net';
import { constants } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { OK_BODY } from './server.ts';

export interface TlsUpstreamCerts {
  ca: string;
  cert: string;
  key: string;
}

export interface TlsUpstream {
  readonly httpsOrigin: string;
  readonly mtlsOrigin: string;
  close(): Promise<void>;
}

interface Ports {
  https: number;
  mtls: number;
}

export async function startTlsUpstream(certs: TlsUpstreamCerts): Promise<TlsUpstream> {
  const child = fork(fileURLToPath(import.meta.url), ['--child'], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' });
  child.send(certs);
  const [ports] = (await once(child, 'message')) as [Ports];
  return {
    httpsOrigin: `https://127.0.0.1:${ports.https}`,
    mtlsOrigin: `https://127.0.0.1:${ports.mtls}`,
    async close() {
      const exited = once(child, 'exit');
      child.disconnect();
      await exited;
    },
  };
}

async function serve(options: ServerOptions): Promise<number> {
  const body = Buffer.from(OK_BODY);
  const server = createServer({ ...options, keepAliveTimeout: 600_000, secureOptions: constants.SSL_OP_NO_TICKET }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  process.once('disconnect', () => {
    server.closeAllConnections();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

if (import.meta.main && process.argv[2] === '--child' && typeof process.send === 'function') {
  const [certs] = (await once(process, 'message')) as [TlsUpstreamCerts];
  const base = { cert: certs.cert, key: certs.key };
  const ports: Ports = {
    https: await serve(base),
    mtls: await serve({ ...base, ca: certs.ca, requestCert: true, rejectUnauthorized: true }),
  };
  process.send(ports);
}
