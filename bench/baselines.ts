/**
 * The reference clients meshfetch is measured against. Each one is used the
 * way its documentation recommends for a keep-alive service-to-service call:
 * one request, status checked, body read in full and JSON-parsed.
 */
import './fetch-first.ts'; // must stay the first import: see the file
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import got from 'got';
import { Pool } from 'undici';
import { BASELINE_NAME, BENCH_PATH, type Candidate } from './harness.ts';
import { NodeFetchAgent, getFetchDispatcher, setFetchDispatcher } from './fetch-first.ts';

function statusError(client: string, status: number | undefined): Error {
  return new Error(`${client}: unexpected status ${status}`);
}

/** node:http with a keep-alive Agent, body collected as a string and JSON-parsed. */
export const nodeHttp: Candidate = {
  name: 'node:http',
  async setup(origin, concurrency) {
    const url = new URL(origin);
    const agent = new HttpAgent({ keepAlive: true, maxSockets: Math.max(concurrency, 32) });
    const options = { host: url.hostname, port: url.port, path: BENCH_PATH, method: 'GET', agent };
    return {
      call: () =>
        new Promise<void>((resolve, reject) => {
          const req = httpRequest(options, (res) => {
            if (res.statusCode !== 200) {
              res.resume();
              reject(statusError('node:http', res.statusCode));
              return;
            }
            res.setEncoding('utf8');
            let body = '';
            res.on('data', (chunk: string) => {
              body += chunk;
            });
            res.on('end', () => {
              try {
                JSON.parse(body);
                resolve();
              } catch (err) {
                reject(err);
              }
            });
            res.on('error', reject);
          });
          req.on('error', reject);
          req.end();
        }),
      close: async () => agent.destroy(),
    };
  },
};

/** undici Pool for the origin: pool.request() then body.json(). The baseline. */
export const undiciRequest: Candidate = {
  name: BASELINE_NAME,
  async setup(origin, concurrency) {
    const pool = new Pool(origin, { connections: Math.max(concurrency, 32) });
    const opts = { path: BENCH_PATH, method: 'GET' as const };
    return {
      call: async () => {
        const { statusCode, body } = await pool.request(opts);
        if (statusCode !== 200) {
          await body.dump();
          throw statusError('undici', statusCode);
        }
        await body.json();
      },
      close: () => pool.close(),
    };
  },
};

/**
 * Global fetch with Node's own default dispatcher (a fresh default-configured
 * Agent of Node's bundled undici per run, installed as the global one, closed
 * afterwards), then res.json().
 */
export const globalFetch: Candidate = {
  name: 'global fetch',
  async setup(origin) {
    const agent = new NodeFetchAgent();
    const previous = getFetchDispatcher();
    setFetchDispatcher(agent);
    const url = origin + BENCH_PATH;
    return {
      call: async () => {
        const res = await fetch(url);
        if (res.status !== 200) {
          await res.body?.cancel();
          throw statusError('fetch', res.status);
        }
        await res.json();
      },
      close: async () => {
        if (getFetchDispatcher() === agent) setFetchDispatcher(previous as InstanceType<typeof NodeFetchAgent>);
        await agent.close();
      },
    };
  },
};

/** got with a keep-alive node:http Agent, .json(); retries off (the upstream never fails here). */
export const gotClient: Candidate = {
  name: 'got',
  async setup(origin, concurrency) {
    const agent = new HttpAgent({ keepAlive: true, maxSockets: Math.max(concurrency, 32) });
    const client = got.extend({ prefixUrl: origin, agent: { http: agent }, retry: { limit: 0 } });
    const path = BENCH_PATH.slice(1); // got wants a path relative to prefixUrl
    return {
      call: async () => {
        await client.get(path).json();
      },
      close: async () => agent.destroy(),
    };
  },
};

/** In table order; the baseline first. */
export const baselineCandidates: Candidate[] = [undiciRequest, nodeHttp, globalFetch, gotClient];
