/**
 * The child process of bench/reports.ts: a control plane and a baseline server side by side. The
 * baseline is the floor of taking a report in: a plain node:http server that reads the body,
 * JSON.parse's it and answers 204. Driven over IPC: { usage: true } → { cpu, rss, memory, spaces }; { close: true } exits.
 */
import { createServer } from 'node:http';
import { getHeapSpaceStatistics } from 'node:v8';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { startControlPlane } from '../lib/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'meshfetch-reports-bench-'));
const policyFile = join(dir, 'policy.json');
writeFileSync(policyFile, JSON.stringify({ apiVersion: 'meshfetch/v1', services: {} }));
const cp = await startControlPlane({ policyFile, logLevel: 'silent', env: {} });

const baseline = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    JSON.parse(Buffer.concat(chunks).toString('utf8'));
    res.writeHead(204).end();
  });
});
baseline.listen(0, '127.0.0.1');
await once(baseline, 'listening');

process.on('message', (message: { usage?: true; close?: true }) => {
  if (message.usage) {
    const { user, system } = process.cpuUsage();
    const memory = process.memoryUsage();
    process.send!({ cpu: (user + system) / 1_000, rss: memory.rss, memory, spaces: Object.fromEntries(getHeapSpaceStatistics().filter((s) => s.space_size > 0).map((s) => [s.space_name, `${(s.space_used_size / 2 ** 20).toFixed(1)}/${(s.space_size / 2 ** 20).toFixed(1)}`])) });
  }
  if (message.close) {
    baseline.close();
    void cp.close().then(() => {
      rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    });
  }
});
process.send!({ ready: { controlPlane: cp.url, baseline: `http://127.0.0.1:${(baseline.address() as AddressInfo).port}` } });
