import FakeTimers from '@sinonjs/fake-timers';
import { expect } from 'chai';
import { compilePolicy } from '../../lib/policy/compile.ts';
import { RetryBudget, RetryBudgets } from '../../lib/resilience/retry-budget.ts';
import { Harness, TRANSPORTS, recordEvents, upPolicy } from '../helpers/fault-server.ts';

type InstalledClock = ReturnType<typeof FakeTimers.install>;

const DEFAULTS = { ratio: 0.2, minPerSecond: 10, ttl: 10_000 };

/** Withdraws until the budget says no; returns how many it gave. */
function drain(budget: RetryBudget, limit = 10_000): number {
  let taken = 0;
  while (taken < limit && budget.tryWithdraw()) taken++;
  return taken;
}

describe('RetryBudget (fake Date)', function () {
  let clock: InstalledClock;
  beforeEach(() => (clock = FakeTimers.install({ toFake: ['Date'], now: 1_000_000 })));
  afterEach(() => clock.uninstall());

  it('starts with a reserve of minPerSecond × ttl: 10/s × 10 s = 100 retries', function () {
    const budget = new RetryBudget(DEFAULTS);
    expect(budget.balance()).to.equal(100);
    expect(drain(budget)).to.equal(100);
    expect(budget.tryWithdraw()).to.equal(false);
    expect(new RetryBudget({ ratio: 0.2, minPerSecond: 3, ttl: 2_000 }).balance()).to.equal(6);
  });

  it('adds ratio × deposits on top of the reserve', function () {
    const budget = new RetryBudget({ ratio: 0.2, minPerSecond: 0, ttl: 10_000 });
    expect(budget.tryWithdraw()).to.equal(false);
    for (let i = 0; i < 4; i++) budget.deposit();
    expect(budget.tryWithdraw()).to.equal(false); // 0.8 of a retry is not a retry
    budget.deposit();
    expect(drain(budget)).to.equal(1);
    for (let i = 0; i < 50; i++) budget.deposit();
    expect(drain(budget)).to.equal(10); // 0.2 × 55 = 11, one already taken
  });

  it('a ratio of 0 and no reserve never allows a retry', function () {
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 0, ttl: 10_000 });
    for (let i = 0; i < 1_000; i++) budget.deposit();
    expect(budget.tryWithdraw()).to.equal(false);
  });

  it('forgets deposits once they are ttl old', function () {
    const budget = new RetryBudget({ ratio: 0.5, minPerSecond: 0, ttl: 10_000 });
    for (let i = 0; i < 10; i++) budget.deposit();
    clock.tick(9_999);
    expect(budget.balance()).to.equal(5);
    clock.tick(1);
    budget.deposit(); // moves the ring on: the first ten are 10 s old now
    expect(budget.balance()).to.equal(0.5);
  });

  it('forgets withdrawals once they are ttl old, so the reserve comes back', function () {
    const budget = new RetryBudget(DEFAULTS);
    expect(drain(budget)).to.equal(100);
    clock.tick(5_000);
    expect(budget.tryWithdraw()).to.equal(false);
    clock.tick(5_000);
    expect(drain(budget)).to.equal(100);
  });

  it('expires slot by slot: deposits made 5 s apart expire 5 s apart', function () {
    const budget = new RetryBudget({ ratio: 1, minPerSecond: 0, ttl: 10_000 });
    for (let i = 0; i < 10; i++) budget.deposit();
    clock.tick(5_000);
    for (let i = 0; i < 20; i++) budget.deposit();
    expect(budget.tryWithdraw()).to.equal(true);
    expect(budget.balance()).to.equal(29);
    clock.tick(5_000); // the first 10 deposits expire; what was made at 5 s does not yet
    expect(budget.balance()).to.equal(19);
    clock.tick(5_000); // everything made at 5 s expires
    expect(budget.balance()).to.equal(0);
  });

  it('a jump far beyond ttl clears everything at once', function () {
    const budget = new RetryBudget(DEFAULTS);
    for (let i = 0; i < 100; i++) budget.deposit();
    drain(budget);
    clock.tick(3_600_000);
    expect(budget.balance()).to.equal(100);
  });

  it('RetryBudgets keeps one budget per service and settings: routes with other settings do not reset it', function () {
    const budgets = new RetryBudgets();
    const a = budgets.for(destination('a'), DEFAULTS);
    expect(budgets.for(destination('a'), { ...DEFAULTS })).to.equal(a);
    expect(budgets.for(destination('b'), DEFAULTS)).to.not.equal(a);
    drain(a);
    const other = budgets.for(destination('a'), { ...DEFAULTS, minPerSecond: 1 });
    expect(other).to.not.equal(a);
    expect(other.balance()).to.equal(10);
    // Back to the first settings (a route alternating with another): the spent budget, not a fresh one.
    expect(budgets.for(destination('a'), DEFAULTS)).to.equal(a);
    expect(a.balance()).to.be.lessThan(1);
  });

  it('RetryBudgets is bounded: 100k names the policy does not name share 64 entries, and evict none of the known', function () {
    const budgets = new RetryBudgets();
    const payments = budgets.for(destination('payments'), DEFAULTS);
    drain(payments);
    const first = budgets.for(destination('name-0'), DEFAULTS);
    expect(budgets.for(destination('name-0'), DEFAULTS)).to.equal(first);
    for (let i = 1; i < 100_000; i++) budgets.for(destination(`name-${i}`), DEFAULTS);
    expect(budgets.size).to.equal(1 + 64);
    expect(budgets.for(destination('name-0'), DEFAULTS)).to.not.equal(first); // evicted long ago
    expect(budgets.for(destination('payments'), DEFAULTS)).to.equal(payments); // still the spent one
    expect(payments.balance()).to.be.lessThan(1);
  });
});

const POLICY = compilePolicy({ apiVersion: 'meshfetch/v1', services: { a: { endpoints: ['http://127.0.0.1:1'] }, b: { endpoints: ['http://127.0.0.1:1'] }, payments: { endpoints: ['http://127.0.0.1:1'] } } }, 'test');
/** A destination as a call context names it: `a`, `b` and `payments` are in the policy, any other name is not. */
function destination(service: string) {
  return { service, policyInForce: POLICY };
}

describe('retry budget through the mesh (100% failing upstream, default policy but the circuit breaker off)', function () {
  for (const { name, create } of TRANSPORTS) {
    describe(`${name} transport`, function () {
      const h = new Harness(create);
      let clock: InstalledClock | undefined;
      afterEach(async () => {
        clock?.uninstall();
        clock = undefined;
        await h.close();
      });

      it('once the reserve is spent, budgetExhausted fires and giveUp says why: budget', async function () {
        clock = FakeTimers.install({ toFake: ['Date'] }); // time stands still: nothing expires
        const srv = await h.server([], { status: 503 });
        const mesh = h.mesh(upPolicy(srv.origin, { circuitBreaker: null })); // an open circuit would stop the calls
        const events = recordEvents(mesh);
        let calls = 0;
        while (events.budgetExhausted.length === 0 && calls < 200) {
          const res = await mesh.client('up').fetch(`/${++calls}`);
          expect(res.status).to.equal(503); // the caller still gets the last answer
          await res.arrayBuffer();
        }
        // Every call deposits 0.2, the reserve is 100: retries stop when 0.2 × calls + 100 − retries < 1.
        const retries = events.retry.length;
        expect(retries).to.equal(Math.floor(0.2 * calls + 100));
        expect(srv.requests.length).to.equal(calls + retries);
        expect(events.budgetExhausted.length).to.equal(1);
        expect(events.budgetExhausted[0]).to.include({ service: 'up' });
        const last = events.giveUp.at(-1)!;
        expect(last).to.include({ why: 'budget', service: 'up' });
        expect(last.reason).to.equal(503);
        expect(events.giveUp.filter((e) => e.why === 'budget').length).to.equal(1);

        // From here on the budget allows one retry per five calls.
        for (let i = 0; i < 10; i++) await (await mesh.client('up').fetch('/more')).arrayBuffer();
        expect(events.retry.length).to.equal(Math.floor(0.2 * (calls + 10) + 100));
        expect(events.budgetExhausted.length).to.equal(11); // every call since wanted one retry more than it got

        // Counted in process, per destination, and visible on what the caller gets.
        const stats = mesh.stats().services.up!;
        expect(stats).to.include({ retries: events.retry.length, budgetExhausted: 11, hedges: 0 });
        expect(stats.giveUps.budget).to.equal(11);
        const err = await mesh.client('up').get('/json').then(() => undefined, (e: unknown) => e);
        expect(err).to.include({ code: 'MESHFETCH_HTTP_STATUS', status: 503, gaveUp: 'budget' });
      });

      it('a retried connection failure stops at the budget too, with the real failure and its attempts', async function () {
        clock = FakeTimers.install({ toFake: ['Date'] });
        const srv = await h.server([], { reset: true });
        const mesh = h.mesh(upPolicy(srv.origin, { circuitBreaker: null, retry: { budget: { minPerSecond: 0.1 } } })); // reserve: 1 retry
        const events = recordEvents(mesh);
        const first = await mesh
          .client('up')
          .fetch('/1')
          .then(
            () => undefined,
            (err: unknown) => err,
          );
        expect(first).to.include({ code: 'MESHFETCH_RESET', attempts: 2, gaveUp: 'budget' }); // one retry (the reserve), then the budget
        expect(events.giveUp.map((e) => e.why)).to.deep.equal(['budget']);
        expect(srv.requests.length).to.equal(2);
      });
    });
  }

  describe('amplification (undici, fake Date)', function () {
    const h = new Harness();
    let clock: InstalledClock | undefined;
    afterEach(async () => {
      clock?.uninstall();
      await h.close();
    });

    it('200 calls/s for 10 s against a 100% failing upstream: at most 1.25 upstream requests per call', async function () {
      this.timeout(20_000);
      this.slow(5_000);
      // The budget allows, within one ttl, 0.2 × calls + minPerSecond × ttl retries:
      // (2000 + 0.2 × 2000 + 10 × 10) / 2000 = 1.25. A fixed 3-attempt loop would send 3.
      clock = FakeTimers.install({ toFake: ['Date'] });
      const srv = await h.server([], { status: 503 });
      const mesh = h.mesh(upPolicy(srv.origin, { circuitBreaker: null })); // an open circuit would stop the calls
      const events = recordEvents(mesh);
      const CALLS = 2_000;
      const BATCH = 10; // calls in flight together; the clock moves 50 ms per batch (200 calls/s)
      let done = 0;
      while (done < CALLS) {
        await Promise.all(
          Array.from({ length: BATCH }, async () => {
            const res = await mesh.client('up').fetch('/fail');
            expect(res.status).to.equal(503);
            await res.arrayBuffer();
          }),
        );
        done += BATCH;
        clock.tick(50); // the last batch starts at 9 950 ms: all within one ttl of the first
      }
      const perCall = srv.requests.length / CALLS;
      expect(perCall).to.be.at.most(1.25);
      expect(perCall).to.be.at.least(1.2); // the budget was used, not switched off
      expect(srv.requests.length).to.equal(CALLS + events.retry.length);
      expect(events.budgetExhausted.length).to.be.greaterThan(0);
    });
  });
});
