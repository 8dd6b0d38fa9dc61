import { expect } from 'chai';
import { once } from 'node:events';
import { createMesh } from '../../lib/index.ts';
import type { Mesh } from '../../lib/index.ts';
import { ADMIN_TOKEN, namedBackend, newerSchemaValidator, paymentsPolicy, revisionInForce, startTestControlPlane } from '../helpers/control-plane.ts';
import { freePort } from '../helpers/free-port.ts';
import type { TestControlPlane } from '../helpers/control-plane.ts';
import { CLI, MESH_CHILD, runCli, startChild } from '../helpers/processes.ts';
import type { Child } from '../helpers/processes.ts';
import type { TestServer } from '../helpers/server.ts';
import { steadyTraffic } from '../helpers/traffic.ts';

describe('control plane and meshes in separate processes', function () {
  this.timeout(30_000);
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of cleanup.splice(0).reverse()) await close();
  });

  it('killing and restarting the control plane under steady traffic fails zero calls; the restarted one serves what was published', async () => {
    const servers = await Promise.all(['a', 'b', 'c'].map(namedBackend));
    cleanup.push(...servers.map((s) => () => s.close()));
    const [a, b, c] = servers as [TestServer, TestServer, TestServer];
    const seed = await startTestControlPlane(paymentsPolicy(a.origin), { logLevel: 'silent' });
    await seed.cp.close(); // only its policy file and directory are used: the real one runs in a child
    cleanup.push(() => seed.close());
    const port = await freePort();
    const env = { MESHFETCH_ADMIN_TOKEN: ADMIN_TOKEN };
    const startCp = async (): Promise<Child> => {
      const child = startChild([CLI, 'control-plane', '--policy', seed.policyFile, '--port', String(port)], env);
      cleanup.push(() => child.kill());
      await child.nextLine((line) => line.startsWith('control plane listening on'));
      return child;
    };
    const url = `http://127.0.0.1:${port}`;
    const publish = async (document: unknown): Promise<string> => {
      const res = await fetch(`${url}/v1/policy`, { method: 'PUT', headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, body: JSON.stringify(document) });
      expect(res.status).to.equal(200);
      return ((await res.json()) as { revision: string }).revision;
    };

    let cp = await startCp();
    const mesh: Mesh = createMesh({ controlPlane: url, logLevel: 'silent', env: {}, controlPlaneTiming: { reconnectMin: 10, reconnectBase: 20, reconnectMax: 100 } });
    cleanup.push(() => mesh.close());
    await mesh.ready();
    const payments = mesh.client('payments');
    const traffic = steadyTraffic(() => payments.get('/x'));
    cleanup.push(() => traffic.stop());
    await traffic.more(50);

    await revisionInForce(mesh, await publish(paymentsPolicy(b.origin)));
    await traffic.more(50);
    await cp.kill('SIGKILL');
    await traffic.more(300);
    cp = await startCp();
    await revisionInForce(mesh, await publish(paymentsPolicy(c.origin)));
    await traffic.more(50);
    await traffic.stop();

    expect(traffic.failures).to.deep.equal([]);
    expect(traffic.ok).to.be.at.least(500);
    expect(b.requests.length).to.be.at.least(350);
    expect(c.requests.length).to.be.at.least(1);
    await cp.kill('SIGTERM');
  });

  it('meshes in child processes all apply a revision; a revision they refuse leaves each on the previous one and shows in `meshfetch policy clients`', async () => {
    const t: TestControlPlane = await startTestControlPlane(paymentsPolicy('http://127.0.0.1:9001'), { logLevel: 'silent', validate: newerSchemaValidator });
    cleanup.push(() => t.close());
    const children = ['checkout', 'orders'].map((service) => startChild([MESH_CHILD], { MESHFETCH_CONTROL_PLANE: t.url, MESHFETCH_SERVICE: service, MESHFETCH_LOG_LEVEL: 'silent' }));
    cleanup.push(...children.map((child) => () => child.kill()));
    const first = t.cp.revision();
    await Promise.all(children.map((child) => child.nextLine((line) => line.includes(`"ready":"${first}"`))));

    const put = await t.publish(paymentsPolicy('http://127.0.0.1:9002'));
    const applied = put.body.revision!;
    await Promise.all(children.map((child) => child.nextLine((line) => line.includes(`"revision":"${applied}","source":"control-plane","applied":true`))));

    const reports = Promise.all(children.map(() => t.logger.next('a client refused a revision')));
    const refused = (await t.publish(paymentsPolicy('http://127.0.0.1:9003', { futureKnob: 1 }))).body.revision!;
    await Promise.all(children.map((child) => child.nextLine((line) => line.includes(`"revision":"${refused}","source":"control-plane","applied":false`))));
    await reports;

    const json = await runCli(['policy', 'clients', '--control-plane', t.url, '-o', 'json']);
    expect(json.code, json.stderr).to.equal(0);
    const clients = JSON.parse(json.stdout) as { service: string; revision: string; rejectedRevision: string; lastError: string }[];
    expect(clients.map((c) => c.service)).to.deep.equal(['checkout', 'orders']);
    for (const client of clients) {
      expect(client).to.include({ revision: applied, rejectedRevision: refused });
      expect(client.lastError).to.contain('futureKnob: unknown key');
    }
    const text = await runCli(['policy', 'clients'], { MESHFETCH_CONTROL_PLANE: t.url });
    expect(text.code).to.equal(0);
    expect(text.stdout.split('\n')[0]).to.match(/^SERVICE\s+INSTANCE\s+REVISION\s+WATCHING\s+LAST SEEN\s+LAST ERROR$/);
    expect(text.stdout).to.contain(`refused ${refused}`);
    for (const child of children) child.process.stdin.end();
    await Promise.all(children.map((child) => once(child.process, 'exit')));
  });
});
