/**
 * A sidecar proxy hop for the peer bench: a local haproxy (the Debian package) in front of the
 * upstream, with keep-alive to both sides and retries, as a mesh sidecar is set up. Its CPU is read
 * from /proc/<pid>/stat so that the bench can charge it to the client that uses it.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../test/helpers/free-port.ts';

const HAPROXY = '/usr/sbin/haproxy';

/** haproxy, installed with apt-get when missing (needs root); otherwise an error that says what to do. */
export function ensureHaproxy(log: (line: string) => void): string {
  try {
    execFileSync(HAPROXY, ['-v'], { stdio: 'ignore' });
    return HAPROXY;
  } catch {
    if (process.getuid?.() !== 0) {
      throw new Error(`the sidecar bench needs haproxy (${HAPROXY}): run \`sudo apt-get install -y haproxy\`, or run the bench as root to have it installed`);
    }
    log('haproxy is missing: apt-get update && apt-get install -y haproxy');
    execFileSync('apt-get', ['update'], { stdio: 'ignore' });
    execFileSync('apt-get', ['install', '-y', 'haproxy'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    return HAPROXY;
  }
}

async function accepts(port: number): Promise<boolean> {
  const socket = connect(port, '127.0.0.1');
  const ok = await new Promise<boolean>((resolve) => {
    socket.once('connect', () => resolve(true));
    socket.once('error', () => resolve(false));
  });
  socket.destroy();
  return ok;
}

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** user + system CPU of a process in µs, from /proc/<pid>/stat (fields 14 and 15, in clock ticks). */
export function processCpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1_000_000) / CLOCK_TICKS;
}

export interface Sidecar {
  /** e.g. "http://127.0.0.1:40123": send requests here instead of the upstream. */
  readonly origin: string;
  cpuUs(): number;
  close(): Promise<void>;
}

export async function startHaproxy(upstream: string, log: (line: string) => void): Promise<Sidecar> {
  const binary = ensureHaproxy(log);
  const { hostname, port: upstreamPort } = new URL(upstream);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'meshfetch-bench-haproxy-'));
  const config = join(dir, 'haproxy.cfg');
  writeFileSync(
    config,
    [
      'global',
      '  nbthread 1', // one core, as a sidecar next to a client usually gets
      '  maxconn 4096',
      'defaults',
      '  mode http',
      '  timeout connect 1s',
      '  timeout client 60s',
      '  timeout server 60s',
      '  timeout http-keep-alive 60s',
      '  option http-keep-alive',
      '  http-reuse always',
      '  retries 2',
      '  retry-on conn-failure empty-response response-timeout 503',
      'frontend sidecar',
      `  bind 127.0.0.1:${port}`,
      '  default_backend upstream',
      'backend upstream',
      `  server upstream ${hostname}:${upstreamPort}`,
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(binary, ['-db', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'exit');
  // haproxy prints nothing when it is ready: try its port, at most 100 times 20 ms apart.
  for (let tries = 0; !(await accepts(port)); tries++) {
    if (tries === 100 || child.exitCode !== null) throw new Error(`haproxy did not start: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return {
    origin: `http://127.0.0.1:${port}`,
    cpuUs: () => processCpuUs(child.pid!),
    async close() {
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
