import type { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Socket } from 'node:net';
import type { Agents, HttpsOptions } from 'got';
import type { OriginTls } from './types.ts';

/** What the got transport adds to a request's options for an origin's TLS; made once per TLS object. */
export type GotTlsOptions = { agent: Agents } | { https: HttpsOptions };

export function destroyIdleSockets(agent: HttpAgent | HttpsAgent): void {
  for (const sockets of Object.values(agent.freeSockets)) {
    for (const socket of sockets ?? []) (socket as Socket).destroy();
  }
}

/**
 * Stops an agent pooling: node reads keepAlive when a socket is freed, and with it off destroys the
 * socket instead, so busy sockets close after their request and idle ones close now.
 */
export function retire(agent: HttpsAgent): void {
  (agent as HttpsAgent & { keepAlive: boolean }).keepAlive = false;
  destroyIdleSockets(agent);
}

/**
 * Keep-alive https agents for mesh origins, one per origin and TLS object, with the TLS in the agent's
 * options (secureContext, checkServerIdentity) rather than in each request: node pools a request
 * that brings its own checkServerIdentity apart from every other one (since Node 24 that is a new
 * connection per request), but not one whose agent carries it; and a secureContext is not part of
 * node's pool key, where ca/cert/key texts would be concatenated into it on every request.
 */
export class MeshHttpsAgents {
  readonly #byOrigin = new Map<string, { tls: OriginTls; agent: HttpsAgent; options: GotTlsOptions }>();
  readonly #maxSockets: number;

  /** `maxSockets`: the transport's connections per origin. */
  constructor(maxSockets: number) {
    this.#maxSockets = maxSockets;
  }

  /** The agent option for `origin`; a new TLS object for it (rotation, new policy) retires the old agent. */
  optionsFor(origin: string, tls: OriginTls): GotTlsOptions {
    let entry = this.#byOrigin.get(origin);
    if (entry?.tls !== tls) {
      if (entry) retire(entry.agent);
      const agent = new HttpsAgent({ keepAlive: true, maxSockets: this.#maxSockets, ...agentTls(tls) });
      entry = { tls, agent, options: { agent: { https: agent } } };
      this.#byOrigin.set(origin, entry);
    }
    return entry.options;
  }

  /** After a rotation: every agent stops pooling; the next request to an origin gets a new one. */
  retireAll(): void {
    for (const { agent } of this.#byOrigin.values()) retire(agent);
    this.#byOrigin.clear();
  }

  agents(): HttpsAgent[] {
    return [...this.#byOrigin.values()].map((entry) => entry.agent);
  }
}

/**
 * The TLS keys an agent passes to each connection it opens: node spreads them over the request's
 * options, so only those that are set (an undefined checkServerIdentity would replace node's own).
 * With a secureContext, the PEM texts are left out: tls.connect uses the context, and node's pool key
 * would otherwise hold them.
 */
function agentTls(tls: OriginTls): OriginTls {
  const options: OriginTls = tls.secureContext ? { secureContext: tls.secureContext } : { ca: tls.ca, cert: tls.cert, key: tls.key };
  if (tls.checkServerIdentity) options.checkServerIdentity = tls.checkServerIdentity;
  for (const key of Object.keys(options) as (keyof OriginTls)[]) if (options[key] === undefined) delete options[key];
  return options;
}

const httpsOptionsCache = new WeakMap<OriginTls, GotTlsOptions>();

/**
 * An origin's TLS as got's per-request `https` options, for a got instance that brings its own https
 * agent (which the transport leaves alone). Only what is set: an undefined key would wipe what the
 * instance configured.
 */
export function perRequestTls(tls: OriginTls): GotTlsOptions {
  let options = httpsOptionsCache.get(tls);
  if (!options) {
    const https: HttpsOptions = {};
    if (tls.ca !== undefined) https.certificateAuthority = tls.ca;
    if (tls.cert !== undefined) https.certificate = tls.cert;
    if (tls.key !== undefined) https.key = tls.key;
    if (tls.checkServerIdentity !== undefined) https.checkServerIdentity = tls.checkServerIdentity;
    httpsOptionsCache.set(tls, (options = { https }));
  }
  return options;
}
