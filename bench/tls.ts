/**
 * The cost of mTLS, paired with plain https in one run (interleaved rounds, bench/harness.ts):
 *   - kept-alive: a GET over an established connection, https (server certificate only) against
 *     mTLS (client certificate, mesh CA, identity check), raw undici and meshfetch's typed path on
 *     both transports;
 *   - handshake: every call on a new connection (`connection: close`, no session resumption), so
 *     each pays a full TLS handshake, https against mTLS.
 *
 *   node bench/tls.ts [--quick]        (also run by `npm run bench`)
 */
import './fetch-first.ts'; // must stay the first import: see the file
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { createMesh, defineService, shape, undiciTransport } from '../lib/index.ts';
import type { TransportFactory } from '../lib/index.ts';
import { gotTransport } from '../lib/got.ts';
import { createCertificateAuthority, issueCertificate } from '../lib/tls/issue.ts';
import { BENCH_PATH, formatTable, runLevel } from './harness.ts';
import type { Candidate, CandidateInstance, LevelResult } from './harness.ts';
import { startTlsUpstream } from './tls-upstream.ts';

const UPSTREAM_ID = 'spiffe://meshfetch.local/upstream';
const Upstream = defineService({ routes: { item: { method: 'GET', path: BENCH_PATH, response: shape<{ id: number }>() } } });

interface Material {
  ca: string;
  cert: string;
  key: string;
  dir: string;
}

async function rawCandidate(name: string, origin: string, connect: Pool.Options['connect'], headers: Record<string, string>): Promise<Candidate> {
  return {
    name,
    async setup(_origin, concurrency): Promise<CandidateInstance> {
      const pool = new Pool(origin, { connections: concurrency, connect });
      return {
        call: async () => {
          const res = await pool.request({ method: 'GET', path: BENCH_PATH, headers });
          if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
          await res.body.json();
        },
        close: () => pool.close(),
      };
    },
  };
}

function meshCandidate(
  name: string,
  origin: string,
  tls: { certFile?: string; keyFile?: string; caFile: string },
  headers: Record<string, string>,
  transport: TransportFactory = undiciTransport(),
): Candidate {
  return {
    name,
    async setup(): Promise<CandidateInstance> {
      const mesh = createMesh({
        env: {},
        service: 'bench',
        logLevel: 'silent',
        transport,
        tls,
        policy: { apiVersion: 'meshfetch/v1', services: { upstream: { endpoints: [origin], identity: UPSTREAM_ID } } },
      });
      const client = mesh.client('upstream', Upstream);
      return {
        call: async () => {
          await client.item({ headers });
        },
        close: () => mesh.close(),
      };
    },
  };
}

async function material(): Promise<Material & { server: { cert: string; key: string } }> {
  const ca = await createCertificateAuthority('bench CA');
  const [server, client] = await Promise.all([
    issueCertificate(ca, { spiffeId: UPSTREAM_ID, ips: ['127.0.0.1'], usage: 'server' }),
    issueCertificate(ca, { spiffeId: 'spiffe://meshfetch.local/bench', usage: 'client' }),
  ]);
  const dir = mkdtempSync(join(tmpdir(), 'meshfetch-bench-tls-'));
  writeFileSync(join(dir, 'ca.pem'), ca.cert);
  writeFileSync(join(dir, 'cert.pem'), client.cert);
  writeFileSync(join(dir, 'key.pem'), client.key);
  return { ca: ca.cert, cert: client.cert, key: client.key, dir, server };
}

/** Both tables, with the mTLS − https differences under each. */
export async function runTlsBench(quick: boolean, log: (line: string) => void): Promise<string> {
  const m = await material();
  const upstream = await startTlsUpstream({ ca: m.ca, cert: m.server.cert, key: m.server.key });
  const files = { caFile: join(m.dir, 'ca.pem'), certFile: join(m.dir, 'cert.pem'), keyFile: join(m.dir, 'key.pem') };
  const close = { connection: 'close' };
  try {
    const keptAlive = await runLevel(
      [
        await rawCandidate('https undici request', upstream.httpsOrigin, { ca: m.ca }, {}),
        await rawCandidate('mTLS undici request', upstream.mtlsOrigin, { ca: m.ca, cert: m.cert, key: m.key }, {}),
        meshCandidate('mesh typed https', upstream.httpsOrigin, { caFile: files.caFile }, {}),
        meshCandidate('mesh typed mTLS', upstream.mtlsOrigin, files, {}),
        meshCandidate('mesh typed https (got)', upstream.httpsOrigin, { caFile: files.caFile }, {}, gotTransport()),
        meshCandidate('mesh typed mTLS (got)', upstream.mtlsOrigin, files, {}, gotTransport()),
      ],
      upstream.httpsOrigin,
      { concurrency: 32, requests: quick ? 4000 : 15000, rounds: quick ? 3 : 8, warmup: 2000, roundWarmup: 320, rotate: true, log },
    );
    const handshake = await runLevel(
      [
        await rawCandidate('https handshake (undici)', upstream.httpsOrigin, { ca: m.ca, maxCachedSessions: 0 }, close),
        await rawCandidate('mTLS handshake (undici)', upstream.mtlsOrigin, { ca: m.ca, cert: m.cert, key: m.key, maxCachedSessions: 0 }, close),
        meshCandidate('mesh mTLS handshake', upstream.mtlsOrigin, files, close),
      ],
      upstream.httpsOrigin,
      { concurrency: 4, requests: quick ? 300 : 1000, rounds: quick ? 3 : 6, warmup: 200, roundWarmup: 40, rotate: true, log },
    );
    return [
      formatTable(keptAlive, 'https undici request'),
      differences(keptAlive, [
        ['mTLS undici request', 'https undici request'],
        ['mesh typed mTLS', 'mesh typed https'],
        ['mesh typed mTLS (got)', 'mesh typed https (got)'],
      ]),
      '',
      formatTable(handshake, 'https handshake (undici)'),
      differences(handshake, [['mTLS handshake (undici)', 'https handshake (undici)'], ['mesh mTLS handshake', 'mTLS handshake (undici)']]),
    ].join('\n');
  } finally {
    await upstream.close();
    rmSync(m.dir, { recursive: true, force: true });
  }
}

function differences(level: LevelResult, pairs: [string, string][]): string {
  const cpu = (name: string): number => level.results.find((r) => r.name === name)!.median.cpuUsPerReq;
  return pairs
    .map(([a, b]) => `  ${`${a} − ${b}`.padEnd(56)} ${(cpu(a) - cpu(b) >= 0 ? '+' : '') + (cpu(a) - cpu(b)).toFixed(1)} µs/req (${(cpu(a) / cpu(b)).toFixed(2)}x)`)
    .join('\n');
}

if (import.meta.main) {
  const quick = process.argv.includes('--quick');
  process.stdout.write(`${await runTlsBench(quick, (line) => process.stderr.write(`${line}\n`))}\n`);
}
