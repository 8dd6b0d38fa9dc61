import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = new URL('../../', import.meta.url);

/** The table rows of every plain snapshot, by edge: [rps, ok/attempt, ok/call, p50, p99, retries, no budget, breaker]. */
function rows(stdout: string, edge: string): string[][] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith(edge))
    .map((line) => line.slice(edge.length).trim().split(/\s+/));
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

async function refuses(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  const outcome = await new Promise<string | undefined>((resolve) => {
    socket.once('connect', () => resolve('connected'));
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code));
  });
  socket.destroy();
  return outcome === 'ECONNREFUSED';
}

describe('npm run demo -- --smoke (needs `npm run build`)', function () {
  this.timeout(90_000);

  it('runs the mesh over mTLS through an outage and a policy change, shows retries and the breaker, and leaves no process or port behind', async () => {
    const { stdout } = await run(process.execPath, ['examples/mesh/demo.ts', '--smoke'], { cwd: root, timeout: 80_000 });

    const payments = rows(stdout, 'orders → payments');
    expect(payments.length, stdout).to.be.greaterThan(2);
    expect(payments.some((row) => Number(row[5]) > 0), 'some retries to payments').to.equal(true);
    expect(payments.some((row) => row[7] === 'open'), 'the breaker on payments opened during the outage').to.equal(true);
    expect(rows(stdout, 'storefront → orders').length).to.equal(payments.length);
    expect(stdout).to.match(/POLICY CHANGE: payments perTryTimeout 2s -> 100ms\b.*\(published revision [0-9a-f]+\)/);

    const stopped = /stopped (\d+) processes \(pids ([\d ]+)\)/.exec(stdout);
    expect(stopped, stdout).to.not.equal(null);
    const pids = stopped![2]!.split(' ').map(Number);
    expect(pids).to.have.length(4); // the control plane and the three services
    expect(pids.filter(isRunning)).to.deep.equal([]);
    const urls = [...stdout.matchAll(/(?:control plane|payments|orders|storefront) on (https?:\/\/127\.0\.0\.1:\d+)/g)].map((m) => m[1]!);
    expect(urls).to.have.length(4);
    expect(urls.filter((url) => url.startsWith('https:')), 'the services speak mTLS').to.have.length(3);
    expect(stdout).to.match(/certificates: 4 issued by a new CA/);
    for (const url of urls) expect(await refuses(url), `${url} is closed`).to.equal(true);

    const traces = /traces: (\d+) spans in (\d+) traces, as OTLP\/JSON in (\S+)/.exec(stdout);
    expect(traces, stdout).to.not.equal(null);
    expect(Number(traces![1])).to.be.greaterThan(Number(traces![2]));
    expect(existsSync(traces![3]!)).to.equal(true);
  });
});
