import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { buildRevision, createMesh, startControlPlane } from '../../lib/index.ts';
import type { Mesh } from '../../lib/index.ts';
import { ADMIN_TOKEN, namedBackend, openStream, paymentsPolicy, revisionInForce, startTestControlPlane } from '../helpers/control-plane.ts';
import type { TestControlPlane } from '../helpers/control-plane.ts';
import { startEtcd } from '../helpers/etcd.ts';
import type { TestEtcd } from '../helpers/etcd.ts';
import { CLI, startChild } from '../helpers/processes.ts';
import type { Child } from '../helpers/processes.ts';
import type { TestServer } from '../helpers/server.ts';
import { steadyTraffic } from '../helpers/traffic.ts';

interface Replica {
  readonly child: Child;
  readonly url: string;
}

interface Answer {
  status: number;
  etag: string | null;
  body: { revision?: string; error?: { reason: string; message: string } };
}

async function put(replica: Replica, document: unknown, ifMatch?: string): Promise<Answer> {
  const headers: Record<string, string> = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
  if (ifMatch !== undefined) headers['if-match'] = `"${ifMatch}"`;
  const res = await fetch(`${replica.url}/v1/policy`, { method: 'PUT', headers, body: JSON.stringify(document) });
  return { status: res.status, etag: res.headers.get('etag'), body: (await res.json()) as Answer['body'] };
}

async function getJson<T>(url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as T };
}

const fastReconnect = { reconnectMin: 10, reconnectBase: 20, reconnectMax: 100 };

describe('control plane replicas on a real etcd (child processes)', function () {
  this.timeout(40_000);
  let etcd: TestEtcd;
  let seed: TestControlPlane;
  let backend: TestServer;
  let etcdClient: Etcd3;
  const cleanup: (() => Promise<void>)[] = [];

  before(async function () {
    this.timeout(120_000); // the first run may install etcd-server
    etcd = await startEtcd();
    etcdClient = new Etcd3({ hosts: `http://${etcd.endpoint}` });
    backend = await namedBackend('payments');
    // Only its policy file is used: it seeds each test's etcd prefix.
    seed = await startTestControlPlane(paymentsPolicy(backend.origin), { logLevel: 'silent' });
    await seed.cp.close();
  });

  after(async () => {
    etcdClient.close();
    await backend.close();
    await seed.close();
    await etcd.close();
  });

  afterEach(async () => {
    for (const close of cleanup.splice(0).reverse()) await close();
  });

  /** `count` replicas on one fresh prefix; the first seeds it from the policy file. */
  async function startReplicas(count: number, extra: readonly string[] = [], env: Record<string, string> = {}): Promise<{ prefix: string; replicas: Replica[] }> {
    const prefix = `test-${randomUUID().slice(0, 8)}`;
    const replicas: Replica[] = [];
    for (let i = 0; i < count; i++) {
      const args = [CLI, 'control-plane', '--store', `etcd://${etcd.endpoint}/${prefix}`, '--port', '0', ...extra, ...(i === 0 ? ['--policy', seed.policyFile] : [])];
      const child = startChild(args, { MESHFETCH_ADMIN_TOKEN: ADMIN_TOKEN, ...env });
      cleanup.push(() => child.kill());
      const line = await child.nextLine((l) => l.startsWith('control plane listening on'));
      replicas.push({ child, url: /listening on (\S+)/.exec(line)![1]! });
    }
    return { prefix, replicas };
  }

  function mesh(controlPlanes: readonly Replica[]): Mesh {
    const m = createMesh({ controlPlane: controlPlanes.map((r) => r.url).join(','), logLevel: 'silent', env: {}, random: () => 0, controlPlaneTiming: fastReconnect });
    cleanup.push(() => m.close());
    return m;
  }

  /** Resolves when etcd sees `key` put (with `accept`) or deleted. */
  async function keyEvent(key: string, kind: 'put' | 'delete', accept: (value: string) => boolean = () => true): Promise<void> {
    const watcher = await etcdClient.watch().key(key).create();
    try {
      const current = await etcdClient.get(key).string();
      if (kind === 'put' ? current !== null && accept(current) : current === null) return;
      await new Promise<void>((resolve) => {
        if (kind === 'delete') watcher.on('delete', () => resolve());
        else watcher.on('put', (kv) => accept(kv.value.toString()) && resolve());
      });
    } finally {
      await watcher.cancel();
    }
  }

  it('a PUT on replica A reaches the meshes of replica C; two concurrent If-Match PUTs on A and B: one wins, the other gets 412 naming the winner; any replica lists every client', async () => {
    const { prefix, replicas } = await startReplicas(3);
    const [a, b, c] = replicas as [Replica, Replica, Replica];
    const onC = mesh([c]);
    await onC.ready();
    const first = onC.policyRevision!;
    expect(first).to.match(/^\d+-[0-9a-f]{8}$/);
    for (const r of replicas) expect((await getJson<{ revision: string }>(`${r.url}/v1/policy`)).body.revision).to.equal(first);

    const published = await put(a, paymentsPolicy(backend.origin, { retry: { attempts: 2 } }));
    expect(published.status).to.equal(200);
    await revisionInForce(onC, published.body.revision!);
    expect(await onC.client('payments').get('/x')).to.deep.equal({ name: 'payments' });

    const current = published.body.revision!;
    const [fromA, fromB] = await Promise.all([
      put(a, paymentsPolicy(backend.origin, { retry: { attempts: 3 } }), current),
      put(b, paymentsPolicy(backend.origin, { retry: { attempts: 4 } }), current),
    ]);
    const answers = [fromA, fromB];
    expect(answers.map((x) => x.status).sort()).to.deep.equal([200, 412]);
    const winner = answers.find((x) => x.status === 200)!.body.revision!;
    const loser = answers.find((x) => x.status === 412)!;
    expect(loser.body.error!.message).to.contain(`If-Match ${current} is not the current revision; the current revision is ${winner}`);
    expect(loser.etag).to.equal(`"${winner}"`);
    await revisionInForce(onC, winner);
    for (const r of replicas) {
      const history = (await getJson<{ revisions: { revision: string }[] }>(`${r.url}/v1/policy/history`)).body.revisions.map((h) => h.revision);
      expect(history.slice(0, 3), r.url).to.deep.equal([winner, current, first]);
    }

    await keyEvent(`${prefix}/clients/${onC.instance}`, 'put', (v) => v.includes(`"revision":"${winner}"`));
    for (const r of [a, b]) {
      const { body } = await getJson<{ clients: { instance: string; revision: string; watching: number }[] }>(`${r.url}/v1/clients`);
      expect(body.clients.find((x) => x.instance === onC.instance), r.url).to.include({ revision: winner, watching: 1 });
    }
  });

  it('a mesh reports to every replica it knows: each one\'s /v1/stats shows its edge with the same figures', async () => {
    const { replicas } = await startReplicas(2, [], { MESHFETCH_LOG_LEVEL: 'debug' });
    const m = createMesh({ service: 'checkout', controlPlane: replicas.map((r) => r.url).join(','), reportInterval: '100ms', logLevel: 'silent', env: {}, random: () => 0, controlPlaneTiming: fastReconnect });
    cleanup.push(() => m.close());
    await m.ready();
    for (let i = 0; i < 3; i++) expect(await m.client('payments').get('/x')).to.deep.equal({ name: 'payments' });
    const reported = (line: string): boolean => {
      if (!line.includes('"msg":"stats report"')) return false;
      const fields = JSON.parse(line) as { instance?: string; requests?: number };
      return fields.instance === m.instance && (fields.requests ?? 0) >= 3;
    };
    await Promise.all(replicas.map((r) => r.child.nextErrorLine(reported)));
    const views = await Promise.all(replicas.map((r) => getJson<{ edges: { from: string; to: string; requests: number; successes: number; instances: number }[] }>(`${r.url}/v1/stats?window=1m`)));
    for (const [i, view] of views.entries()) {
      expect(view.body.edges.map((e) => [e.from, e.to, e.requests, e.successes, e.instances]), replicas[i]!.url).to.deep.equal([['checkout', 'payments', 3, 3, 1]]);
    }
  });

  it('kill -9 a replica under steady traffic: zero failed calls; its mesh moves to the next replica and applies each later revision once, none missed; its clients that did not move vanish when its lease expires', async () => {
    const { prefix, replicas } = await startReplicas(2, ['--client-lease', '2']);
    const [a, b] = replicas as [Replica, Replica];
    const moving = mesh([a, b]); // random() = 0: it starts on A
    await moving.ready();
    const applied: string[] = [moving.policyRevision!];
    moving.on('policy', (event) => void (event.applied && applied.push(event.revision!)));
    // A watcher that will not move (a raw stream, as from a client of another version): its record is A's to keep.
    const stayer = await openStream(a.url, { 'x-meshfetch-service': 'legacy', 'x-meshfetch-instance': 'legacy-1' });
    cleanup.push(async () => stayer.close());
    await stayer.nextEvent();
    await keyEvent(`${prefix}/clients/legacy-1`, 'put');

    const traffic = steadyTraffic(() => moving.client('payments').get('/x'));
    cleanup.push(() => traffic.stop());
    await traffic.more(50);
    await a.child.kill('SIGKILL');
    // Published while the mesh may still be reconnecting: it must arrive (Last-Event-ID resumes on B).
    const afterKill = await put(b, paymentsPolicy(backend.origin, { retry: { attempts: 2 } }));
    expect(afterKill.status).to.equal(200);
    await revisionInForce(moving, afterKill.body.revision!);
    const later = await put(b, paymentsPolicy(backend.origin, { retry: { attempts: 3 } }));
    await revisionInForce(moving, later.body.revision!);
    await traffic.more(100);
    await traffic.stop();

    expect(traffic.failures).to.deep.equal([]);
    expect(applied.slice(1)).to.deep.equal([afterKill.body.revision, later.body.revision]);
    await keyEvent(`${prefix}/clients/legacy-1`, 'delete');
    await keyEvent(`${prefix}/clients/${moving.instance}`, 'put', (v) => v.includes(later.body.revision!));
    const listed = (await getJson<{ clients: { instance: string }[] }>(`${b.url}/v1/clients`)).body.clients.map((x) => x.instance);
    expect(listed).to.include(moving.instance).and.not.include('legacy-1');
  });

  it('etcd killed: calls, reads and watches go on, writes answer 503 naming the store, /healthz is degraded; etcd back: writes publish and every replica catches up', async () => {
    const { replicas } = await startReplicas(2);
    const [a, b] = replicas as [Replica, Replica];
    const onB = mesh([b]);
    await onB.ready();
    const before = onB.policyRevision!;
    const traffic = steadyTraffic(() => onB.client('payments').get('/x'));
    cleanup.push(() => traffic.stop());
    await traffic.more(50);

    const lost = Promise.all(replicas.map((r) => r.child.nextErrorLine((l) => l.includes('policy store unreachable'))));
    await etcd.kill();
    const refused = await put(a, paymentsPolicy(backend.origin, { retry: { attempts: 2 } }));
    expect(refused.status).to.equal(503);
    expect(refused.body.error).to.include({ reason: 'store-unavailable' });
    expect(refused.body.error!.message).to.contain('the policy store is unavailable (etcd').and.contain('the revision in force stays');
    await lost;
    for (const r of replicas) {
      expect(await getJson(`${r.url}/healthz`)).to.deep.include({ status: 503, body: { status: 'degraded', revision: before, watchers: r === b ? 1 : 0 } });
      expect((await getJson<{ revision: string }>(`${r.url}/v1/policy`)).body.revision).to.equal(before);
    }
    const stream = await openStream(a.url);
    cleanup.push(async () => stream.close());
    expect((await stream.nextEvent()).id).to.equal(before);
    await traffic.more(100);

    const back = Promise.all(replicas.map((r) => r.child.nextErrorLine((l) => l.includes('policy store reachable again'))));
    await etcd.start();
    await back;
    const published = await put(a, paymentsPolicy(backend.origin, { retry: { attempts: 2 } }));
    expect(published.status, JSON.stringify(published.body)).to.equal(200);
    const seenOnStream = await stream.nextEvent();
    await revisionInForce(onB, published.body.revision!);
    expect(seenOnStream.id).to.equal(published.body.revision);
    for (const r of replicas) expect(await getJson(`${r.url}/healthz`)).to.deep.include({ status: 200 });
    await traffic.more(50);
    await traffic.stop();
    expect(traffic.failures).to.deep.equal([]);
  });

  it('names revisions <etcd revision>-<digest>; a watcher naming a newer revision (moved from a replica that is ahead) is sent nothing until the next one', async () => {
    const prefix = `test-${randomUUID().slice(0, 8)}`;
    const cp = await startControlPlane({ storeUrl: `etcd://${etcd.endpoint}/${prefix}`, policyFile: seed.policyFile, adminToken: ADMIN_TOKEN, heartbeatInterval: 50, logLevel: 'silent', env: {} });
    cleanup.push(() => cp.close());
    const replica = { url: cp.url } as Replica;
    const [sequence, digest] = cp.revision().split('-') as [string, string];
    const document = (await getJson<Record<string, unknown>>(`${cp.url}/v1/policy`)).body;
    expect(digest).to.equal(buildRevision(document, 'test', 'api').digest.slice(0, 8));

    const ahead = await openStream(cp.url, { 'last-event-id': `${Number(sequence) + 1}-00000000` });
    const behind = await openStream(cp.url, { 'last-event-id': `${Number(sequence) - 1}-00000000` });
    cleanup.push(async () => ahead.close(), async () => behind.close());
    expect((await behind.nextEvent()).id).to.equal(cp.revision());
    await ahead.nextHeartbeat();
    const next = await put(replica, paymentsPolicy(backend.origin, { retry: { attempts: 2 } }));
    expect(next.body.revision).to.match(new RegExp(`^${Number(sequence) + 1}-[0-9a-f]{8}$`));
    expect((await ahead.nextEvent()).id).to.equal(next.body.revision);
    expect((await behind.nextEvent()).id).to.equal(next.body.revision);

    const same = await put(replica, paymentsPolicy(backend.origin, { retry: { attempts: 2 } }));
    expect(same.body).to.deep.include({ revision: next.body.revision, changed: false });
    for (const wrong of ['not-a-revision', `${Number(sequence) + 1}-00000000`]) {
      const refused = await put(replica, paymentsPolicy(backend.origin), wrong);
      expect(refused.status, wrong).to.equal(412);
      expect(refused.etag).to.equal(`"${next.body.revision}"`);
    }
  });
});
