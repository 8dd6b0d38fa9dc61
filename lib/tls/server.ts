import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Server, ServerOptions } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../log.ts';
import type { PolicyStore } from '../policy/store.ts';
import { withIncomingDeadline } from '../resilience/deadline-context.ts';
import { isAllowed, peerIdentity, serviceOfIdentity } from './identity.ts';
import type { TlsMaterial } from './material.ts';
import type { CertificateWatcher } from './watcher.ts';

/** Who is calling, from the client certificate the TLS handshake verified against the mesh CA. */
export interface CallerIdentity {
  /** The certificate's SPIFFE id (else its DNS name, else CN), e.g. "spiffe://meshfetch.local/checkout". */
  readonly identity: string;
  /** The service it stands for: the SPIFFE id's last path segment ("checkout"). */
  readonly service: string;
}

/** A request handled by mesh.createServer(): `caller` is set before the handler runs. */
export interface MeshIncomingMessage extends IncomingMessage {
  caller: CallerIdentity;
}

export type MeshRequestHandler = (req: MeshIncomingMessage, res: ServerResponse) => unknown;

export interface ServerDeps {
  /** This service's name: its `allow` list in policy says who may call it. */
  readonly service: string;
  readonly store: PolicyStore;
  readonly watcher: CertificateWatcher;
  readonly logger: Logger;
}

/** node:https options from material: this service's certificate, and client certificates required from the mesh CA. */
export function serverOptionsFrom(material: TlsMaterial): ServerOptions {
  return { cert: material.cert, key: material.key, ca: material.ca, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' };
}

/** The caller's identity on an mTLS request (any node:https server); undefined without a verified client certificate. */
export function callerIdentity(req: IncomingMessage): CallerIdentity | undefined {
  const socket = req.socket as TLSSocket;
  if (!socket.authorized) return undefined;
  const identity = peerIdentity(socket.getPeerCertificate());
  return identity === undefined ? undefined : { identity, service: serviceOfIdentity(identity) };
}

function forbid(res: ServerResponse, reason: string): void {
  const body = JSON.stringify({ error: 'forbidden', reason });
  res.writeHead(403, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * Wraps a handler: the caller's identity goes on the request, the service's `allow` list (read from
 * the policy in force, per request) is enforced with a 403 naming the caller, and the caller's
 * deadline is continued for the calls the handler makes.
 */
export function authorizedHandler(deps: Omit<ServerDeps, 'watcher'>, handler: MeshRequestHandler): (req: IncomingMessage, res: ServerResponse) => unknown {
  const continued = withIncomingDeadline(handler as (req: IncomingMessage, res: ServerResponse) => unknown);
  return (req, res) => {
    const caller = callerIdentity(req);
    if (!caller) return forbid(res, 'no verified client certificate with an identity');
    const allow = deps.store.current?.services.get(deps.service)?.allow;
    if (allow !== undefined && !isAllowed(allow, caller.identity)) {
      const reason = `${caller.identity} is not allowed to call ${deps.service} (services.${deps.service}.allow)`;
      deps.logger.warn('call refused', { caller: caller.identity, service: deps.service });
      return forbid(res, reason);
    }
    (req as MeshIncomingMessage).caller = caller;
    return continued(req, res);
  };
}

/**
 * An https server for this service: mTLS with the mesh's material, which it follows through
 * rotations (setSecureContext: new handshakes use the new certificate, open connections carry on).
 */
export function createMeshServer(deps: ServerDeps, handler: MeshRequestHandler): Server {
  const server = createHttpsServer(serverOptionsFrom(deps.watcher.current), authorizedHandler(deps, handler));
  const stop = deps.watcher.onRotate((material) => server.setSecureContext(serverOptionsFrom(material)));
  server.once('close', stop);
  return server;
}
