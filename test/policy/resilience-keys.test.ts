import { expect } from 'chai';
import { compilePolicy } from '../../lib/policy/compile.ts';
import { DEFAULT_POLICY } from '../../lib/policy/defaults.ts';

const problems = (doc: unknown): string[] => {
  try {
    compilePolicy(doc, 'test');
    return [];
  } catch (err) {
    return (err as Error).message.split('\n').slice(1).map((line) => line.trim());
  }
};

describe('policy: breaker, outlier detection and load balancer keys', () => {
  it('has Envoy’s outlier detection and Linkerd’s balancer defaults', () => {
    expect(DEFAULT_POLICY.outlierDetection).to.deep.equal({ consecutiveFailures: 5, baseEjectionTime: 30_000, maxEjectionTime: 300_000, maxEjectedPercent: 10 });
    expect(DEFAULT_POLICY.loadBalancer).to.deep.equal({ strategy: 'peak-ewma', initialRtt: 30, decay: 10_000 });
    expect(DEFAULT_POLICY.circuitBreaker!.failOn).to.deep.equal(['5xx']);
  });

  it('merges them key by key, and null switches outlier detection off', () => {
    const policy = compilePolicy(
      {
        apiVersion: 'meshfetch/v1',
        defaults: { outlierDetection: null, circuitBreaker: { failOn: [500, 503] } },
        services: { a: { outlierDetection: { consecutiveFailures: 2 }, loadBalancer: { strategy: 'round-robin' } }, b: {} },
      },
      'test',
    );
    expect(policy.services.get('a')!.policy.outlierDetection).to.deep.equal({ ...DEFAULT_POLICY.outlierDetection, consecutiveFailures: 2 });
    expect(policy.services.get('a')!.policy.loadBalancer).to.deep.equal({ ...DEFAULT_POLICY.loadBalancer, strategy: 'round-robin' });
    expect(policy.services.get('b')!.policy.outlierDetection).to.equal(null);
    expect(policy.services.get('b')!.policy.circuitBreaker!.failOn).to.deep.equal([500, 503]);
  });

  it('names each bad value with its path', () => {
    expect(
      problems({
        apiVersion: 'meshfetch/v1',
        defaults: { loadBalancer: { strategy: 'random' }, circuitBreaker: { failOn: ['4xx'] } },
        services: { a: { outlierDetection: { baseEjectionTime: '10s', maxEjectionTime: '1s', maxEjectedPercent: 101 } } },
      }),
    ).to.have.members([
      'defaults.loadBalancer.strategy: expected one of peak-ewma, round-robin, got "random"',
      'defaults.circuitBreaker.failOn[0]: expected "5xx" or an HTTP status, got "4xx"',
      'services.a.outlierDetection.maxEjectedPercent: expected a number from 0 to 100, got 101',
    ]);
    expect(problems({ apiVersion: 'meshfetch/v1', services: { a: { outlierDetection: { baseEjectionTime: '10s', maxEjectionTime: '1s' } } } })).to.deep.equal([
      'services.a.outlierDetection: baseEjectionTime (10000ms) is larger than maxEjectionTime (1000ms)',
    ]);
  });
});
