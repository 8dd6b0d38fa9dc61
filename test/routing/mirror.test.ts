import { expect } from 'chai';
import { Readable } from 'node:stream';
import { MIRROR_CONCURRENCY } from '../../lib/routing/mirror.ts';
import type { MeshEventMap } from '../../lib/index.ts';
import type { Mesh } from '../../lib/mesh.ts';
import type { PolicyDocument } from '../../lib/policy/types.ts';
import { Harness, recordEvents } from '../helpers/fault-server.ts';
import type { FaultServer } from '../helpers/fault-server.ts';
import { seededRandom } from '../helpers/seeded-random.ts';

const V1 = 'meshfetch/v1' as const;

function mirrored(up: FaultServer, shadow: FaultServer, percent = 100): PolicyDocument {
  return {
    apiVersion: V1,
    services: { up: { endpoints: [up.origin], mirror: { service: 'shadow', percent } }, shadow: { endpoints: [shadow.origin] } },
  };
}

/** Resolves once `count` mirror events have been seen (counting those already recorded). */
function mirrorEvents(mesh: Mesh, recorded: MeshEventMap['mirror'][], count: number): Promise<void> {
  if (recorded.length >= count) return Promise.resolve();
  return new Promise((resolve) => {
    const off = mesh.on('mirror', () => {
      if (recorded.length < count) return;
      off();
      resolve();
    });
  });
}

describe('mirroring (real loopback upstreams)', function () {
  this.timeout(30_000);
  const h = new Harness();
  afterEach(() => h.close());

  it('the mirror receives a copy of each call while the real calls complete without waiting for it', async () => {
    const up = await h.server([], { status: 200, body: 'real' });
    const shadow = await h.server([], { hang: true }); // never answers: a caller that waited would hang
    const mesh = h.mesh(mirrored(up, shadow));
    const events = recordEvents(mesh);
    for (let i = 0; i < 5; i++) {
      const res = await mesh.client('up').fetch(`/orders/${i}`, { method: 'PUT', body: `order ${i}` });
      expect(await res.text()).to.equal('real');
    }
    const copies = await Promise.all([1, 2, 3, 4, 5].map((n) => shadow.request(n)));
    expect(copies.map((c) => [c.method, c.url, c.body.toString(), c.headers['x-meshfetch-mirror']])).to.have.deep.members(
      [0, 1, 2, 3, 4].map((i) => ['PUT', `/orders/${i}`, `order ${i}`, '1']),
    );
    expect(events.call).to.have.length(5);
    expect(events.mirror).to.deep.equal([]); // every copy is still in flight: no real call waited on one
    expect(up.requests).to.have.length(5);
    events.dispose();
  });

  it('caps the copies in flight per mirror service and drops the rest, never queuing them', async () => {
    const up = await h.server();
    const shadow = await h.server([], { hang: true });
    const mesh = h.mesh(mirrored(up, shadow));
    const events = recordEvents(mesh);
    for (let i = 0; i < MIRROR_CONCURRENCY + 4; i++) await (await mesh.client('up').fetch('/x')).arrayBuffer();
    await shadow.request(MIRROR_CONCURRENCY);
    await mirrorEvents(mesh, events.mirror, 4);
    expect(events.mirror.map((e) => e.outcome)).to.deep.equal(['dropped', 'dropped', 'dropped', 'dropped']);
    expect(shadow.requests).to.have.length(MIRROR_CONCURRENCY);
    events.dispose();
  });

  it('mirrors `percent` of calls, is never retried, and its answer is discarded', async () => {
    const up = await h.server([], { status: 200, body: 'real' });
    const shadow = await h.server([], { status: 503, body: 'shadow' });
    const seed = 17;
    const mesh = h.mesh(mirrored(up, shadow, 50), { random: seededRandom(seed) });
    const events = recordEvents(mesh);
    for (let i = 0; i < 400; i++) expect(await (await mesh.client('up').fetch('/x')).text()).to.equal('real');
    // One draw per call (one endpoint, no retry, no fault): the same sequence says which calls fired.
    const draws = seededRandom(seed);
    let fired = 0;
    for (let i = 0; i < 400; i++) if (draws() < 0.5) fired++;
    expect(Math.abs(fired - 200)).to.be.below(4 * Math.sqrt(400 * 0.25));
    await mirrorEvents(mesh, events.mirror, fired);
    expect(shadow.requests).to.have.length(fired); // a 503 from the mirror is not retried
    expect(events.mirror.every((e) => e.outcome === 'sent' && e.service === 'up' && e.mirror === 'shadow')).to.equal(true);
    events.dispose();
  });

  it('does not mirror a one-shot stream body: the real call gets it whole', async () => {
    const up = await h.server();
    const shadow = await h.server();
    const mesh = h.mesh(mirrored(up, shadow));
    const events = recordEvents(mesh);
    const res = await mesh.client('up').fetch('/upload', { method: 'POST', body: Readable.from([Buffer.from('one '), Buffer.from('shot')]) as unknown as BodyInit });
    await res.arrayBuffer();
    expect((await up.request(1)).body.toString()).to.equal('one shot');
    expect(events.mirror.map((e) => e.outcome)).to.deep.equal(['dropped']);
    expect(shadow.requests).to.have.length(0);
    events.dispose();
  });
});
