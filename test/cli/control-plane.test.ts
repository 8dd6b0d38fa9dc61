import { expect } from 'chai';
import { once } from 'node:events';
import { paymentsPolicy, startTestControlPlane } from '../helpers/control-plane.ts';
import { freePort } from '../helpers/free-port.ts';
import type { TestControlPlane } from '../helpers/control-plane.ts';
import { CLI, runCli, startChild } from '../helpers/processes.ts';

describe('meshfetch control-plane (CLI)', function () {
  this.timeout(20_000);
  let seed: TestControlPlane;
  before(async () => {
    // Only its policy file is used; the command under test serves it.
    seed = await startTestControlPlane(paymentsPolicy('http://127.0.0.1:9001'), { logLevel: 'silent' });
    await seed.cp.close();
  });
  after(() => seed.close());

  it('serves a file: store named in MESHFETCH_STORE on 127.0.0.1, and exits 0 on SIGTERM', async () => {
    const child = startChild([CLI, 'control-plane', '--port', '0'], { MESHFETCH_STORE: `file:${seed.policyFile}` });
    const line = await child.nextLine((l) => l.startsWith('control plane listening on'));
    const url = /on (http:\/\/127\.0\.0\.1:\d+) \(revision ([0-9a-f]{16})\)$/.exec(line);
    expect(url, line).to.not.equal(null);
    const health = (await (await fetch(`${url![1]}/healthz`)).json()) as { status: string; revision: string };
    expect(health).to.include({ status: 'ok', revision: url![2] });
    const exited = once(child.process, 'exit');
    child.process.kill('SIGTERM');
    expect((await exited)[0]).to.equal(0);
  });

  it('exits 1 naming the problem: no store, a malformed store URL, an etcd nobody runs, a policy file that does not exist, a --history that keeps nothing', async () => {
    const none = await runCli(['control-plane']);
    expect(none.code).to.equal(1);
    expect(none.stderr).to.contain('give --policy FILE');
    const malformed = await runCli(['control-plane', '--store', 'etcd://127.0.0.1:2379']);
    expect(malformed.code).to.equal(1);
    expect(malformed.stderr).to.contain('--store="etcd://127.0.0.1:2379": name a key prefix after the hosts');
    const fromEnv = await runCli(['control-plane'], { MESHFETCH_STORE: 'zk://127.0.0.1/x' });
    expect(fromEnv.code).to.equal(1);
    expect(fromEnv.stderr).to.contain('MESHFETCH_STORE="zk://127.0.0.1/x": expected file:<path> or etcd://');
    const port = await freePort();
    const etcd = await runCli(['control-plane', '--store', `etcd://127.0.0.1:${port}/mesh`]);
    expect(etcd.code).to.equal(1);
    expect(etcd.stderr).to.contain(`policy store etcd://127.0.0.1:${port}/mesh: cannot reach etcd`).and.contain('ECONNREFUSED');
    const missing = await runCli(['control-plane', '--policy', `${seed.dir}/nope.yaml`, '--port', '0']);
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.contain('cannot read policy file').and.contain('ENOENT');
    const noHistory = await runCli(['control-plane', '--policy', seed.policyFile, '--port', '0', '--history', '0']);
    expect(noHistory.code).to.equal(1);
    expect(noHistory.stderr).to.contain('--history: expected a whole number >= 1, got "0"');
  });
});
