import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { TlsPem } from '../tls/material.ts';

/** A keep-alive agent for the control plane's origin, presenting the mesh's client certificate over HTTPS. */
export function controlPlaneAgent(controlPlane: URL, tls: TlsPem): HttpAgent {
  return controlPlane.protocol === 'https:' ? new HttpsAgent({ keepAlive: true, cert: tls.cert, key: tls.key, ca: tls.ca }) : new HttpAgent({ keepAlive: true });
}

/** POSTs a JSON text; resolves on 204, rejects on any other answer, an error or `timeout` ms without progress. */
export function postJson(url: URL, agent: HttpAgent, text: string, timeout = 5_000): Promise<void> {
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, {
      method: 'POST',
      agent,
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
