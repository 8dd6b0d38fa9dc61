/**
 * The child process of bench/reports.ts: a control plane and two baseline servers side by side,
 * each the floor of taking reports in one way: a plain node:http server that reads each request's
 * body, JSON.parse's it and answers 204 (a report per request), and one that JSON.parse's each line
 * of a long request as it ends and answers 204 when the request ends (a stream of reports, as
 * meshes send them). Driven over IPC: { usage: true } → { cpu, rss, memory, spaces }; { close: true } exits.
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

const streamBaseline = createServer({ requestTimeout: 0 }, (req, res) => {
  let partial: Buffer[] = [];
  req.on('data', (chunk: Buffer) => {
    let start = 0;
    for (let newline = chunk.indexOf(10); newline !== -1; newline = chunk.indexOf(10, start)) {
      // A line whole in its chunk is decoded in place, as the control plane does; one across chunks is put together first.
      if (partial.length === 0) JSON.parse(chunk.toString('utf8', start, newline));
      else {
        partial.push(chunk.subarray(start, newline));
        JSON.parse(Buffer.concat(partial).toString('utf8'));
        partial = [];
      }
      start = newline + 1;
    }
    if (start < chunk.length) partial.push(chunk.subarray(start));
  });
  req.on('end', () => res.writeHead(204).end());
});
streamBaseline.listen(0, '127.0.0.1');
await once(streamBaseline, 'listening');
const origin = (server: typeof baseline): string => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

process.on('message', (message: { usage?: true; close?: true }) => {
  if (message.usage) {
    const { user, system } = process.cpuUsage();
    const memory = process.memoryUsage();
    process.send!({ cpu: (user + system) / 1_000, rss: memory.rss, memory, spaces: Object.fromEntries(getHeapSpaceStatistics().filter((s) => s.space_size > 0).map((s) => [s.space_name, `${(s.space_used_size / 2 ** 20).toFixed(1)}/${(s.space_size / 2 ** 20).toFixed(1)}`])) });
  }
  if (message.close) {
    baseline.close();
    streamBaseline.close();
    void cp.close().then(() => {
      rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    });
  }
});
process.send!({ ready: { controlPlane: cp.url, baseline: origin(baseline), streamBaseline: origin(streamBaseline) } });
