import { expect } from 'chai';
import { ErrorCode, MeshError } from '../../lib/index.ts';
import type { PolicyDocument } from '../../lib/index.ts';
import { PerDestination } from '../../lib/pipeline/per-destination.ts';
import type { DestinationState } from '../../lib/pipeline/per-destination.ts';
import { compilePolicy } from '../../lib/policy/compile.ts';
import type { CompiledPolicy } from '../../lib/policy/compile.ts';
import { Harness, upPolicy } from '../helpers/fault-server.ts';

/** A state that says when it is in use and when it was dropped. */
class Counted implements DestinationState {
  readonly n: number;
  calls = 0;
  disposed = false;
  constructor(n: number) {
    this.n = n;
  }
  inUse(): boolean {
    return this.calls > 0;
  }
  idle(now: number, lastUsed: number): boolean {
    return now - lastUsed > 1_000;
  }
  dispose(): void {
    this.disposed = true;
  }
}

describe('per-destination state', function () {
  let made = 0;
  const get = (states: PerDestination<Counted>, name: string, known: boolean, now = 0): Counted =>
    states.get(name, now) ?? states.add(name, name, known, new Counted(made++), now);

  it('gives each service with endpoints its own entry, and every other name a place in a 64-entry LRU', function () {
    const states = new PerDestination<Counted>();
    const payments = get(states, 'payments', true);
    const hot = get(states, 'hot-unknown', false);
    const first = get(states, 'made-up-0', false);
    for (let i = 1; i < 10_000; i++) {
      get(states, `made-up-${i}`, false);
      if (i % 32 === 0) expect(get(states, 'hot-unknown', false)).to.equal(hot); // recently used: kept
    }
    expect(states.size).to.equal(1 + 64);
    expect(get(states, 'payments', true)).to.equal(payments);
    expect(first.disposed).to.equal(true);
    expect(get(states, 'made-up-0', false)).to.not.equal(first); // long evicted: made again
  });

  it('never evicts an entry in use: the LRU passes over it, and shrinks back to its bound once it is free', function () {
    const states = new PerDestination<Counted>();
    const busy: Counted[] = [];
    for (let i = 0; i < 100; i++) {
      busy.push(get(states, `busy-${i}`, false));
      busy[i]!.calls++; // a call starts on it
      get(states, `made-up-${i}`, false);
    }
    for (let i = 100; i < 1_000; i++) get(states, `made-up-${i}`, false);
    expect(busy.filter((state, i) => state.disposed || get(states, `busy-${i}`, false) !== state)).to.deep.equal([]);
    expect(states.size).to.be.at.most(100 + 64 + 8); // over the bound only by the names in use (and one scan's slack)
    for (const state of busy) state.calls--;
    for (let i = 0; i < 100; i++) get(states, `more-${i}`, false);
    expect(states.size).to.equal(64);
  });

  it('sweeps idle entries on access at most every sweepEvery ms, keeping those in use', function () {
    const states = new PerDestination<Counted>(undefined, 500);
    const idle = get(states, 'idle', true, 0);
    const busy = get(states, 'busy', true, 0);
    busy.calls++;
    get(states, 'fresh', true, 900); // swept at 900 ms: nothing unused for over 1 s yet
    get(states, 'fresh', true, 1_300);
    expect(states.size).to.equal(3); // idle is idle by now, but no sweep is due before 1.4 s
    get(states, 'fresh', true, 1_500);
    expect(idle.disposed).to.equal(true);
    expect(busy.disposed).to.equal(false);
    expect(states.size).to.equal(2);
  });

  it('drops services a new policy no longer names unless in use, keeps one it names without endpoints, and drops everything at shutdown (unsubscribing)', function () {
    const listeners = new Set<(policy: CompiledPolicy) => void>();
    const shutdown = new AbortController();
    const onPolicy = (listener: (policy: CompiledPolicy) => void) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    };
    const states = new PerDestination<Counted>({ onPolicy, shutdown: shutdown.signal });
    const a = get(states, 'a', true);
    const b = get(states, 'b', true);
    const c = get(states, 'c', true);
    c.calls++;
    get(states, 'stray', false);
    const install = (doc: PolicyDocument) => listeners.forEach((listener) => listener(compilePolicy(doc, 'test')));
    const d = get(states, 'd', true);
    install({ apiVersion: 'meshfetch/v1', services: { a: { endpoints: ['http://127.0.0.1:2'] }, d: { split: [{ service: 'a', weight: 1 }] } } });
    expect(b.disposed).to.equal(true); // left the policy, not in use
    expect(states.size).to.equal(4); // a, d (named, with a split and no endpoints), c (in use, now among the other names) and the stray name
    expect(get(states, 'a', true)).to.equal(a);
    expect(get(states, 'd', true)).to.equal(d);
    expect(get(states, 'c', false)).to.equal(c); // its calls and any new one share it
    shutdown.abort();
    expect(states.size).to.equal(0);
    expect([a.disposed, c.disposed, d.disposed]).to.deep.equal([true, true, true]);
    expect(listeners.size).to.equal(0);
  });
});

// The calls below end at the endpoint layer (no endpoints), so no transport is involved.
describe('per-service state through the mesh', function () {
  const h = new Harness();
  afterEach(() => h.close());

  it('keeps a service\'s state across policy revisions, and drops it when a revision removes the service', async function () {
    const srv = await h.server([{ status: 503 }, { status: 200 }, { status: 503 }, { status: 503 }, { status: 503 }, { status: 200 }]);
    // ratio 0: calls add nothing; a reserve of 0.1/s × 10 s = 1 retry
    const policy = () => upPolicy(srv.origin, { retry: { budget: { ratio: 0, minPerSecond: 0.1 } } });
    const mesh = h.mesh({ ...policy(), revision: 'r1' });
    const status = async (): Promise<number> => {
      const res = await mesh.client('up').fetch('/');
      await res.arrayBuffer();
      return res.status;
    };
    expect(await status()).to.equal(200); // 503, then the one retry
    expect(await status()).to.equal(503); // the budget is spent
    mesh.setPolicy({ ...policy(), revision: 'r2' });
    expect(await status()).to.equal(503); // a new revision keeping the service keeps its (spent) budget
    mesh.setPolicy({ apiVersion: 'meshfetch/v1', revision: 'r3' }); // the service leaves the policy
    mesh.setPolicy({ ...policy(), revision: 'r4' });
    expect(await status()).to.equal(200); // back with a fresh budget: 503, then a retry
    expect(srv.requests.length).to.equal(6);
  });

  it('30k calls to made-up service names keep the heap and stats() bounded, and the known service working', async function () {
    this.timeout(60_000);
    const srv = await h.server([], { status: 200, body: '{"ok":true}', headers: { 'content-type': 'application/json' } });
    const mesh = h.mesh(upPolicy(srv.origin));
    const callUnknown = async (i: number): Promise<void> => {
      const err = await mesh.client(`svc-${i}`).get('/').catch((e: unknown) => e);
      expect((err as MeshError).code).to.equal(ErrorCode.Config);
    };
    const gc = globalThis.gc!;
    for (let i = 0; i < 1_000; i++) await callUnknown(i); // warm up: code, the LRUs' first fill
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 1_000; i < 30_000; i++) await callUnknown(i);
    gc();
    const grown = process.memoryUsage().heapUsed - before;
    // Unbounded, this was ~1 KB per name (about 28 MiB here); bounded, it stays flat.
    expect(grown, `${(grown / 2 ** 20).toFixed(1)} MiB`).to.be.below(8 * 2 ** 20);
    expect(Object.keys(mesh.stats().services).length).to.be.at.most(1_024);
    expect(await mesh.client('up').get('/')).to.deep.equal({ ok: true });
  });
});

// Names without endpoints share a 64-entry LRU; one with a call in flight must never leave it.
describe('per-destination state in use', function () {
  const h = new Harness();
  afterEach(() => h.close());

  /** 100 calls, each to a new made-up name (an absolute URL): enough to push anything unused out of the LRU. */
  async function churn(mesh: ReturnType<Harness['mesh']>, origin: string): Promise<void> {
    for (let i = 0; i < 100; i++) {
      const res = await mesh.client(`made-up-${i}`).fetch(`${origin}/`);
      await res.arrayBuffer();
    }
  }

  it('keeps a bulkhead with calls in flight and waiting: the waiting call stays queued and the limit holds', async function () {
    const held = await h.server([], { hang: true });
    const ok = await h.server([], { status: 200 });
    const mesh = h.mesh({ apiVersion: 'meshfetch/v1', defaults: { retry: null, concurrency: { max: 1, queue: 1 } } });
    const stray = mesh.client('stray');
    const controller = new AbortController();
    const inFlight = stray.fetch(`${held.origin}/`, { signal: controller.signal }).catch((e: unknown) => e);
    await held.request(1);
    let queuedOutcome: unknown = 'still queued';
    const queued = stray.fetch(`${held.origin}/`, { signal: controller.signal }).then(
      (res) => (queuedOutcome = res),
      (err: unknown) => (queuedOutcome = err),
    );
    await churn(mesh, ok.origin);
    expect(queuedOutcome).to.equal('still queued'); // evicted, its bulkhead refused it as "mesh is closed"
    const third = await stray.fetch(`${ok.origin}/`).catch((e: unknown) => e);
    expect((third as MeshError).code).to.equal(ErrorCode.ConcurrencyLimit); // a second bulkhead would have let it through
    controller.abort();
    await Promise.all([inFlight, queued]);
    expect(held.requests.length).to.equal(1);
  });

  it('keeps the state of a service the policy names with a split and no endpoints of its own: its open circuit and its spent rate limit hold through the churn', async function () {
    const failing = await h.server([], { status: 503 });
    const ok = await h.server([], { status: 200 });
    const mesh = h.mesh({
      apiVersion: 'meshfetch/v1',
      defaults: { retry: null, rateLimit: { rps: 1_000, burst: 1_000 } }, // the made-up names get buckets too
      services: {
        breaking: { split: [{ service: 'backend', weight: 1 }], circuitBreaker: { volumeThreshold: 1, errorThresholdPercentage: 50, resetTimeout: '60s' } },
        limited: { split: [{ service: 'backend', weight: 1 }], rateLimit: { rps: 0.001, burst: 1 } },
        backend: { endpoints: [failing.origin], circuitBreaker: null },
      },
    });
    const outcome = (service: string): Promise<number | string> => mesh.client(service).fetch('/').then(
      async (res) => (await res.arrayBuffer(), res.status),
      (err: unknown) => (err as MeshError).code,
    );
    expect([await outcome('breaking'), await outcome('breaking')]).to.deep.equal([503, ErrorCode.CircuitOpen]);
    expect([await outcome('limited'), await outcome('limited')]).to.deep.equal([503, ErrorCode.RateLimited]);
    await churn(mesh, ok.origin);
    expect([await outcome('breaking'), await outcome('limited')]).to.deep.equal([ErrorCode.CircuitOpen, ErrorCode.RateLimited]);
    expect(failing.requests.length).to.equal(2);
  });

  it('mesh.stats() gives a service named in policy without endpoints its own figures, after any number of made-up names', async function () {
    const ok = await h.server([], { status: 200 });
    const mesh = h.mesh({ apiVersion: 'meshfetch/v1', services: { front: { split: [{ service: 'backend', weight: 1 }] }, backend: { endpoints: [ok.origin] } } });
    await churn(mesh, ok.origin);
    await (await mesh.client('front').fetch('/')).arrayBuffer();
    expect(mesh.stats().services.front).to.include({ requests: 1, successes: 1 }); // not folded into (other)
  });

  it('keeps a half-open circuit whose probe is in flight: the next call is refused, not sent', async function () {
    const failing = await h.server([], { status: 503 });
    const held = await h.server([], { hang: true });
    const ok = await h.server([], { status: 200 });
    const clock = h.fakeClock(['Date']);
    const circuitBreaker = { volumeThreshold: 1, errorThresholdPercentage: 50, resetTimeout: '1s' as const };
    const mesh = h.mesh({ apiVersion: 'meshfetch/v1', defaults: { retry: null, circuitBreaker } });
    const stray = mesh.client('stray');
    expect((await stray.fetch(`${failing.origin}/`)).status).to.equal(503); // opens the circuit
    clock.tick(1_001);
    const controller = new AbortController();
    const probe = stray.fetch(`${held.origin}/`, { signal: controller.signal }).catch((e: unknown) => e);
    await held.request(1);
    await churn(mesh, ok.origin);
    const next = await stray.fetch(`${ok.origin}/`).then(
      (res) => res.status,
      (err: unknown) => (err as MeshError).code,
    );
    expect(next).to.equal(ErrorCode.CircuitOpen); // a fresh breaker would have sent it (200)
    controller.abort();
    await probe;
  });
});
