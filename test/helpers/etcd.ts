import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { freePort } from './free-port.ts';

/** A real etcd (Debian's etcd-server, 3.4) on loopback ports, in a temporary data directory. */
export interface TestEtcd {
  /** host:port of its client URL, for etcd://… store URLs. */
  readonly endpoint: string;
  /** Kills it (SIGKILL) and waits for it to exit; the data directory stays for start(). */
  kill(): Promise<void>;
  /** Starts it again on the same ports and data; resolves when it serves clients. */
  start(): Promise<void>;
  /** Stops it and removes its data. */
  close(): Promise<void>;
}

const READY = 'ready to serve client requests';

/** Finds etcd on PATH, installing Debian's etcd-server when missing and allowed (root); else says what to install. */
export function ensureEtcd(): string {
  const found = (): boolean => spawnSync('etcd', ['--version'], { stdio: 'ignore' }).status === 0;
  if (found()) return 'etcd';
  if (process.getuid?.() === 0) {
    for (const args of [['update'], ['install', '-y', 'etcd-server']]) {
      const run = spawnSync('apt-get', args, { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
      if (run.status !== 0) break;
    }
    if (found()) return 'etcd';
  }
  throw new Error('these tests need a real etcd: install Debian\'s etcd-server (as root: apt-get update && apt-get install -y etcd-server), or put an etcd 3.4+ binary on PATH');
}

export async function startEtcd(): Promise<TestEtcd> {
  const binary = ensureEtcd();
  const dir = mkdtempSync(join(tmpdir(), 'meshfetch-etcd-'));
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const args = [
    '--name', 'default', '--data-dir', join(dir, 'data'),
    '--listen-client-urls', client, '--advertise-client-urls', client,
    '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `default=${peer}`,
  ];
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    const started = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...(process.arch === 'arm64' && { ETCD_UNSUPPORTED_ARCH: 'arm64' }) } });
    child = started;
    let log = '';
    const ready = new Promise<void>((resolve, reject) => {
      createInterface({ input: started.stderr! }).on('line', (line) => {
        log = `${log}${line}\n`.slice(-4000);
        if (line.includes(READY)) resolve();
      });
      started.once('exit', (code) => reject(new Error(`etcd exited (${code}) before it was ready:\n${log}`)));
      started.once('error', reject);
    });
    await ready;
  };
  const kill = async (): Promise<void> => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = once(running, 'exit');
    running.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    endpoint: `127.0.0.1:${clientPort}`,
    kill,
    start,
    async close() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
