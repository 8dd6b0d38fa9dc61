import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { TlsPem } from '../tls/material.ts';

/** A keep-alive agent for the control plane's origin; over HTTPS each request names the certificate it presents (certificateNow). */
export function controlPlaneAgent(controlPlane: URL): HttpAgent {
  return controlPlane.protocol === 'https:' ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
}

/**
 * The mesh's client certificate as it is now (`tls` is live material, replaced at each rotation), for
 * a request to the control plane: given with each request rather than once to the agent, so that
 * after a rotation the next connection presents the new one. The agent pools connections by
 * certificate, so none opened with the old one is used for the new.
 */
export function certificateNow(url: URL, tls: TlsPem): TlsPem {
  return url.protocol === 'https:' ? { cert: tls.cert, key: tls.key, ca: tls.ca } : {};
}

/** POSTs a JSON text; resolves on 204, rejects on any other answer, an error or `timeout` ms without progress. */
export function postJson(url: URL, agent: HttpAgent, tls: TlsPem, text: string, timeout = 5_000): Promise<void> {
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, {
      method: 'POST',
      agent,
      ...certificateNow(url, tls),
      timeout,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
    });
    req.on('timeout', () => req.destroy(new Error('report timed out')));
    req.on('error', reject);
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 204 ? resolve() : reject(new Error(`report answered HTTP ${res.statusCode}`))));
    });
    req.end(text);
  });
}
