import { expect } from 'chai';
import { compilePolicy as publicCompilePolicy, DEFAULT_POLICY, ErrorCode, MeshError } from '../../lib/index.ts';
import { BUILT_IN_POLICY, compilePathPattern, compilePolicy } from '../../lib/policy/compile.ts';
import type { CompiledPolicy } from '../../lib/policy/compile.ts';
import { resolveCall } from '../../lib/policy/resolve.ts';

const V1 = 'meshfetch/v1';

/** The MESHFETCH_CONFIG error compilePolicy throws for `doc`, and its problem lines. */
function problemsOf(doc: unknown, source = 'test'): { error: MeshError; lines: string[] } {
  let caught: unknown;
  try {
    compilePolicy(doc, source);
  } catch (err) {
    caught = err;
  }
  expect(caught, 'compilePolicy should have thrown').to.be.instanceOf(MeshError);
  const error = caught as MeshError;
  expect(error.code).to.equal(ErrorCode.Config);
  const [head, ...lines] = error.message.split('\n');
  expect(head).to.equal(`invalid policy from ${source}:`);
  return { error, lines: lines.map((line) => line.trim()) };
}

function service(policy: CompiledPolicy, name: string) {
  const compiled = policy.services.get(name);
  expect(compiled, `service ${name}`).to.not.equal(undefined);
  return compiled!;
}

describe('policy compile: validation', () => {
  it('is exported from the package entry point', () => {
    expect(publicCompilePolicy).to.equal(compilePolicy);
  });

  it('accepts the document of the brief', () => {
    const policy = compilePolicy(
      {
        apiVersion: V1,
        revision: 'r1',
        defaults: {
          timeout: '10s',
          perTryTimeout: '2s',
          retry: {
            attempts: 3,
            backoff: { base: '25ms', max: '250ms' },
            on: ['connect-failure', 'reset', 'per-try-timeout', 429, 502, 503, 504],
            methods: ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'],
            budget: { ratio: 0.2, minPerSecond: 10, ttl: '10s' },
            retryAfter: { honor: true, max: '30s' },
          },
          circuitBreaker: { errorThresholdPercentage: 50, volumeThreshold: 20, window: '10s', resetTimeout: '5s' },
          concurrency: { max: 1024, queue: 8192 },
          rateLimit: null,
          hedge: null,
          tls: { mode: 'permissive' },
        },
        services: {
          payments: {
            endpoints: ['https://127.0.0.1:8443'],
            identity: 'spiffe://meshfetch.local/payments',
            allow: ['checkout'],
            retry: { attempts: 2 },
            routes: [{ name: 'create-charge', match: { method: 'POST', path: '/charges' }, timeout: '3s', retry: { attempts: 1 } }],
          },
        },
      },
      'brief',
    );
    expect(policy.revision).to.equal('r1');
    expect(policy.defaults).to.deep.equal(DEFAULT_POLICY);
    const payments = service(policy, 'payments');
    expect(payments.identity).to.equal('spiffe://meshfetch.local/payments');
    expect(payments.allow).to.deep.equal(['checkout']);
    expect(payments.endpoints).to.deep.equal([{ origin: 'https://127.0.0.1:8443', basePath: '', url: 'https://127.0.0.1:8443' }]);
    expect(payments.policy.retry?.attempts).to.equal(2);
    const route = payments.routesByName.get('create-charge')!;
    expect(route.policy.timeout).to.equal(3_000);
    expect(route.policy.retry?.attempts).to.equal(1);
  });

  it('names the full path of an unknown key', () => {
    const { lines } = problemsOf({ apiVersion: V1, services: { payments: { retry: { atempts: 2 } } } });
    expect(lines).to.deep.equal(['services.payments.retry.atempts: unknown key; did you mean "attempts"?']);
  });

  it('rejects a service name that could not be a host name or a metric label', () => {
    const { lines } = problemsOf({ apiVersion: V1, services: { 'pay ments': {}, '-x': {}, Payments: {}, payments: {} } });
    expect(lines).to.deep.equal([
      'services.pay ments: the name must be lower-case letters, digits, ".", "_" or "-", starting with a letter or digit (it is the host of http://<name>/ URLs, which are case-insensitive)',
      'services.-x: the name must be lower-case letters, digits, ".", "_" or "-", starting with a letter or digit (it is the host of http://<name>/ URLs, which are case-insensitive)',
      'services.Payments: the name must be lower-case letters, digits, ".", "_" or "-", starting with a letter or digit (it is the host of http://<name>/ URLs, which are case-insensitive)',
    ]);
  });

  it('names unknown keys at the top level, in defaults and in routes', () => {
    const { lines } = problemsOf({
      apiVersion: V1,
      extra: true,
      defaults: { timout: '1s' },
      services: { a: { routes: [{ name: 'r', match: { path: '/x', verb: 'GET' }, colour: 'red' }] } },
    });
    expect(lines).to.have.members([
      'extra: unknown key',
      'defaults.timout: unknown key; did you mean "timeout"?',
      'services.a.routes[0].match.verb: unknown key',
      'services.a.routes[0].colour: unknown key',
    ]);
  });

  it('rejects bad durations, naming the path and the value', () => {
    const { lines } = problemsOf({
      apiVersion: V1,
      defaults: { timeout: 10, perTryTimeout: '2 seconds', retry: { backoff: { base: '-1ms' } } },
      services: { a: { connectTimeout: '0ms', circuitBreaker: { window: '50ms' }, retry: { budget: { ttl: '500ms' } } } },
    });
    expect(lines).to.have.members([
      'defaults.timeout: expected a duration such as "250ms", "10s" or "1m", got 10',
      'defaults.perTryTimeout: expected a duration such as "250ms", "10s" or "1m", got "2 seconds"',
      'defaults.retry.backoff.base: expected a duration such as "250ms", "10s" or "1m", got "-1ms"',
      'services.a.connectTimeout: expected a duration of at least 1ms, got "0ms"',
      'services.a.circuitBreaker.window: expected a duration of at least 100ms, got "50ms"',
      'services.a.retry.budget.ttl: expected a duration of at least 1000ms, got "500ms"',
    ]);
  });

  it('rejects bad enums and values out of range', () => {
    const { lines } = problemsOf({
      apiVersion: 'meshfetch/v2',
      defaults: {
        tls: { mode: 'none' },
        retry: { attempts: 11, on: ['timeout', 600], methods: ['get'], budget: { ratio: 1.5 } },
        circuitBreaker: { volumeThreshold: 2.5 },
        hedge: { delay: 'p99', max: 4 },
        idempotent: 'yes',
      },
    });
    expect(lines).to.have.members([
      'apiVersion: expected one of meshfetch/v1, got "meshfetch/v2"',
      'defaults.tls.mode: expected one of strict, permissive, disabled, got "none"',
      'defaults.retry.attempts: expected a number from 1 to 10, got 11',
      'defaults.retry.on[0]: expected connect-failure, reset, per-try-timeout or an HTTP status, got "timeout"',
      'defaults.retry.on[1]: expected connect-failure, reset, per-try-timeout or an HTTP status, got 600',
      'defaults.retry.methods[0]: expected an HTTP method in capitals, such as GET, got "get"',
      'defaults.retry.budget.ratio: expected a number from 0 to 1, got 1.5',
      'defaults.circuitBreaker.volumeThreshold: expected a whole number, got 2.5',
      'defaults.hedge.delay: expected a duration of at most 2147483647ms or "p95", got "p99"',
      'defaults.hedge.max: expected a number from 1 to 3, got 4',
      'defaults.idempotent: expected true or false, got "yes"',
    ]);
  });

  it('lists every problem of the document in one error', () => {
    const { error, lines } = problemsOf(
      {
        apiVersion: V1,
        services: {
          payments: {
            retry: { atempts: 2, backoff: { base: '1x' } },
            timeout: 5,
            tls: { mode: 'none' },
            endpoints: [],
            routes: [{ match: { path: 'charges' } }],
          },
        },
        extra: 1,
      },
      '/etc/meshfetch/policy.yaml',
    );
    expect(error.message).to.contain('/etc/meshfetch/policy.yaml');
    expect(lines).to.have.members([
      'services.payments.retry.atempts: unknown key; did you mean "attempts"?',
      'services.payments.retry.backoff.base: expected a duration such as "250ms", "10s" or "1m", got "1x"',
      'services.payments.timeout: expected a duration such as "250ms", "10s" or "1m", got 5',
      'services.payments.tls.mode: expected one of strict, permissive, disabled, got "none"',
      'services.payments.endpoints: expected a list of at least 1 item(s), got a list',
      'services.payments.routes[0].match.path: expected a path starting with "/", got "charges"',
      'services.payments.routes[0].name: required',
      'extra: unknown key',
    ]);
  });

  it('requires apiVersion and an object at the top', () => {
    expect(problemsOf({}).lines).to.deep.equal(['apiVersion: required']);
    expect(problemsOf(null).lines).to.deep.equal(['(document): expected an object, got null']);
    expect(problemsOf('apiVersion: meshfetch/v1').lines).to.deep.equal(['(document): expected an object, got "apiVersion: meshfetch/v1"']);
    expect(problemsOf([]).lines).to.deep.equal(['(document): expected an object, got a list']);
  });

  it('rejects bad service and route fields', () => {
    const { lines } = problemsOf({
      apiVersion: V1,
      services: {
        a: {
          endpoints: ['ftp://host', 'http://ok:1'],
          identity: 'payments',
          allow: ['bad name'],
          routes: [
            { name: 'r 1', match: { method: 'post', path: '/x' } },
            { name: 'r2', match: { method: [], path: '/y' } },
          ],
        },
        b: { baseUrl: 'localhost:8080' },
        c: 'not an object',
      },
    });
    expect(lines).to.have.members([
      'services.a.endpoints[0]: expected an http:// or https:// URL, got "ftp://host"',
      'services.a.identity: expected a SPIFFE ID such as "spiffe://meshfetch.local/payments" or a DNS name such as "payments.internal", got "payments"',
      'services.a.allow[0]: expected a service name, a SPIFFE ID or "*", got "bad name"',
      'services.a.routes[0].name: expected a route name of letters, digits, ".", "_" or "-", got "r 1"',
      'services.a.routes[0].match.method: expected a method or a list of methods, got "post"',
      'services.a.routes[1].match.method: expected a method or a list of methods, got a list',
      'services.b.baseUrl: expected an http:// or https:// URL, got "localhost:8080"',
      'services.c: expected an object, got "not an object"',
    ]);
  });

  it('checks the merged policy: a feature switched on needs its required keys, backoff base <= max', () => {
    const { lines } = problemsOf({
      apiVersion: V1,
      defaults: { retry: { backoff: { base: '1s' } } },
      services: { a: { rateLimit: { burst: 3 }, routes: [{ name: 'r', match: { path: '/' }, hedge: { max: 2 } }] } },
    });
    expect(lines).to.have.members([
      'defaults.retry.backoff: base (1000ms) is larger than max (250ms)',
      'services.a.rateLimit.rps: required when rateLimit is on',
      'services.a.routes[0].hedge.delay: required when hedge is on',
    ]);
  });

  it('rejects endpoints and baseUrl together, a route name used twice, and an endpoint shared by two services', () => {
    const { lines } = problemsOf({
      apiVersion: V1,
      services: {
        a: {
          endpoints: ['http://10.0.0.1:80'],
          baseUrl: 'http://10.0.0.2:80',
          routes: [
            { name: 'same', match: { path: '/1' } },
            { name: 'same', match: { path: '/2' } },
          ],
        },
        b: { endpoints: ['http://10.0.0.1:80/b'] },
      },
    });
    expect(lines).to.have.members([
      'services.a: set endpoints or baseUrl, not both',
      'services.a.routes[1].name: "same" is used twice',
    ]);
  });

  it('lets one service list several base paths on one origin', () => {
    const policy = compilePolicy({ apiVersion: V1, services: { a: { endpoints: ['http://gw:8080/blue', 'http://gw:8080/green'] } } }, 'test');
    expect(service(policy, 'a').endpoints).to.deep.equal([
      { origin: 'http://gw:8080', basePath: '/blue', url: 'http://gw:8080/blue' },
      { origin: 'http://gw:8080', basePath: '/green', url: 'http://gw:8080/green' },
    ]);
    expect(policy.byOrigin.get('http://gw:8080')?.[0]?.service.name).to.equal('a');
  });
});

describe('policy compile: merging defaults → service → route', () => {
  it('uses the built-in defaults when the document has none', () => {
    const policy = compilePolicy({ apiVersion: V1, services: { a: {} } }, 'test');
    expect(policy.defaults).to.deep.equal(DEFAULT_POLICY);
    expect(service(policy, 'a').policy).to.deep.equal(DEFAULT_POLICY);
    expect(BUILT_IN_POLICY.defaults).to.deep.equal(DEFAULT_POLICY);
    expect(BUILT_IN_POLICY.services.size).to.equal(0);
    expect(BUILT_IN_POLICY.revision).to.equal(undefined);
  });

  it('turns durations into milliseconds', () => {
    const policy = compilePolicy({ apiVersion: V1, defaults: { timeout: '1.5m', perTryTimeout: '750ms', bodyTimeout: '1h', hedge: { delay: '40ms' } } }, 'test');
    expect(policy.defaults.timeout).to.equal(90_000);
    expect(policy.defaults.perTryTimeout).to.equal(750);
    expect(policy.defaults.bodyTimeout).to.equal(3_600_000);
    expect(policy.defaults.hedge).to.deep.equal({ max: 1, delay: 40 });
  });

  it('merges objects key by key at every level', () => {
    const policy = compilePolicy(
      {
        apiVersion: V1,
        defaults: { retry: { attempts: 5 } },
        services: {
          a: {
            retry: { backoff: { base: '10ms' } },
            routes: [{ name: 'r', match: { path: '/r' }, retry: { budget: { ratio: 0.5 } } }],
          },
        },
      },
      'test',
    );
    const a = service(policy, 'a');
    expect(policy.defaults.retry).to.deep.equal({ ...DEFAULT_POLICY.retry!, attempts: 5 });
    expect(a.policy.retry).to.deep.equal({ ...DEFAULT_POLICY.retry!, attempts: 5, backoff: { base: 10, max: 250 } });
    expect(a.routesByName.get('r')!.policy.retry).to.deep.equal({
      ...DEFAULT_POLICY.retry!,
      attempts: 5,
      backoff: { base: 10, max: 250 },
      budget: { ratio: 0.5, minPerSecond: 10, ttl: 10_000 },
    });
  });

  it('replaces arrays rather than merging them', () => {
    const policy = compilePolicy(
      {
        apiVersion: V1,
        defaults: { retry: { on: [503, 504] } },
        services: { a: { retry: { on: [429], methods: ['GET'] } } },
      },
      'test',
    );
    expect(policy.defaults.retry!.on).to.deep.equal([503, 504]);
    expect(service(policy, 'a').policy.retry!.on).to.deep.equal([429]);
    expect(service(policy, 'a').policy.retry!.methods).to.deep.equal(['GET']);
  });

  it('replaces scalars, and a route inherits its service rather than the defaults', () => {
    const policy = compilePolicy(
      {
        apiVersion: V1,
        defaults: { timeout: '5s' },
        services: { a: { timeout: '3s', idempotent: true, routes: [{ name: 'r', match: { path: '/r' }, perTryTimeout: '1s' }] } },
      },
      'test',
    );
    const route = service(policy, 'a').routesByName.get('r')!.policy;
    expect(policy.defaults.timeout).to.equal(5_000);
    expect(route.timeout).to.equal(3_000);
    expect(route.idempotent).to.equal(true);
    expect(route.perTryTimeout).to.equal(1_000);
  });

  it('switches a feature off with null', () => {
    const policy = compilePolicy(
      {
        apiVersion: V1,
        defaults: { rateLimit: { rps: 50 } },
        services: {
          a: { retry: null, circuitBreaker: null, rateLimit: null, routes: [{ name: 'r', match: { path: '/r' } }] },
          b: {},
        },
      },
      'test',
    );
    const a = service(policy, 'a');
    expect(a.policy.retry).to.equal(null);
    expect(a.policy.circuitBreaker).to.equal(null);
    expect(a.policy.rateLimit).to.equal(null);
    expect(a.routesByName.get('r')!.policy.retry).to.equal(null);
    expect(service(policy, 'b').policy.rateLimit).to.deep.equal({ rps: 50, burst: 50 });
    expect(service(policy, 'b').policy.retry).to.deep.equal(DEFAULT_POLICY.retry);
  });

  it('lets a child switch back on a feature that is null in its parent, starting from the built-in defaults', () => {
    const policy = compilePolicy(
      {
        apiVersion: V1,
        defaults: { retry: null, circuitBreaker: null },
        services: {
          a: {
            retry: { attempts: 2 },
            routes: [{ name: 'r', match: { path: '/r' }, circuitBreaker: { volumeThreshold: 5 } }],
          },
        },
      },
      'test',
    );
    const a = service(policy, 'a');
    expect(policy.defaults.retry).to.equal(null);
    expect(a.policy.retry).to.deep.equal({ ...DEFAULT_POLICY.retry!, attempts: 2 });
    expect(a.policy.circuitBreaker).to.equal(null);
    expect(a.routesByName.get('r')!.policy.circuitBreaker).to.deep.equal({ ...DEFAULT_POLICY.circuitBreaker!, volumeThreshold: 5 });
  });

  it('switches on rateLimit and hedge, which are off by default, deriving burst from rps', () => {
    const policy = compilePolicy(
      {
        apiVersion: V1,
        services: { a: { rateLimit: { rps: 2.5 }, hedge: { delay: 'p95' } }, b: { rateLimit: { rps: 0.1 } }, c: { rateLimit: { rps: 10, burst: 40 } } },
      },
      'test',
    );
    expect(policy.defaults.rateLimit).to.equal(null);
    expect(policy.defaults.hedge).to.equal(null);
    expect(service(policy, 'a').policy.rateLimit).to.deep.equal({ rps: 2.5, burst: 3 });
    expect(service(policy, 'a').policy.hedge).to.deep.equal({ max: 1, delay: 'p95' });
    expect(service(policy, 'b').policy.rateLimit).to.deep.equal({ rps: 0.1, burst: 1 });
    expect(service(policy, 'c').policy.rateLimit).to.deep.equal({ rps: 10, burst: 40 });
  });

  it('derives burst from the rps of the layer that sets it, and keeps a burst that was written', () => {
    const policy = compilePolicy(
      {
        apiVersion: V1,
        defaults: { rateLimit: { rps: 10 } },
        services: {
          a: { rateLimit: { rps: 100 }, routes: [{ name: 'r', match: { path: '/r' }, rateLimit: { rps: 5 } }] },
          b: { rateLimit: { rps: 20, burst: 7 }, routes: [{ name: 'r', match: { path: '/r' }, rateLimit: { rps: 30 } }] },
        },
      },
      'test',
    );
    expect(policy.defaults.rateLimit).to.deep.equal({ rps: 10, burst: 10 });
    expect(service(policy, 'a').policy.rateLimit).to.deep.equal({ rps: 100, burst: 100 });
    expect(service(policy, 'a').routesByName.get('r')!.policy.rateLimit).to.deep.equal({ rps: 5, burst: 5 });
    expect(service(policy, 'b').policy.rateLimit).to.deep.equal({ rps: 20, burst: 7 });
    expect(service(policy, 'b').routesByName.get('r')!.policy.rateLimit).to.deep.equal({ rps: 30, burst: 7 });
  });

  it('does not change the built-in defaults object', () => {
    const before = JSON.stringify(DEFAULT_POLICY);
    compilePolicy({ apiVersion: V1, defaults: { retry: { attempts: 9, backoff: { base: '1ms' } }, rateLimit: { rps: 3 } } }, 'test');
    expect(JSON.stringify(DEFAULT_POLICY)).to.equal(before);
  });
});

describe('policy compile: endpoints and baseUrl', () => {
  it('splits endpoints into origin and base path', () => {
    const policy = compilePolicy(
      { apiVersion: V1, services: { a: { endpoints: ['http://127.0.0.1:8080', 'https://10.0.0.2:8443/'] } } },
      'test',
    );
    expect(service(policy, 'a').endpoints).to.deep.equal([
      { origin: 'http://127.0.0.1:8080', basePath: '', url: 'http://127.0.0.1:8080' },
      { origin: 'https://10.0.0.2:8443', basePath: '', url: 'https://10.0.0.2:8443' },
    ]);
    expect(policy.byOrigin.get('http://127.0.0.1:8080')?.[0]?.service.name).to.equal('a');
    expect(policy.byOrigin.get('https://10.0.0.2:8443')?.[0]?.service.name).to.equal('a');
  });

  it('takes a single baseUrl with a base path, without its trailing slash', () => {
    const policy = compilePolicy({ apiVersion: V1, services: { a: { baseUrl: 'http://127.0.0.1:9000/api/v1/' } } }, 'test');
    expect(service(policy, 'a').endpoints).to.deep.equal([{ origin: 'http://127.0.0.1:9000', basePath: '/api/v1', url: 'http://127.0.0.1:9000/api/v1' }]);
    expect(policy.byOrigin.get('http://127.0.0.1:9000')?.[0]?.service.name).to.equal('a');
  });

  it('normalizes default ports out of the origin', () => {
    const policy = compilePolicy({ apiVersion: V1, services: { a: { endpoints: ['http://host:80/x', 'https://other:443'] } } }, 'test');
    expect(service(policy, 'a').endpoints.map((e) => e.origin)).to.deep.equal(['http://host', 'https://other']);
  });

  it('leaves a service without endpoints with none', () => {
    const policy = compilePolicy({ apiVersion: V1, services: { a: {} } }, 'test');
    expect(service(policy, 'a').endpoints).to.deep.equal([]);
    expect(policy.byOrigin.size).to.equal(0);
  });
});

describe('policy route resolution', () => {
  const policy = compilePolicy(
    {
      apiVersion: V1,
      defaults: { timeout: '9s' },
      services: {
        payments: {
          timeout: '8s',
          routes: [
            { name: 'create-charge', match: { method: 'POST', path: '/charges' }, timeout: '1s' },
            { name: 'get-charge', match: { method: ['GET', 'HEAD'], path: '/charges/:id' }, timeout: '2s' },
            { name: 'refunds', match: { path: '/charges/:id/refunds/*' }, timeout: '3s' },
            { name: 'admin', match: { path: '/admin/*' }, timeout: '4s' },
            { name: 'also-admin', match: { path: '/admin/users' }, timeout: '5s' },
          ],
        },
        plain: { timeout: '7s' },
      },
    },
    'test',
  );
  const resolve = (service: string, route: string | undefined, method: string, path: string) => {
    const resolved = resolveCall(policy, service, route, method, path);
    return { route: resolved.route, timeout: resolved.policy.timeout, service: resolved.service?.name };
  };

  it('matches method and exact path', () => {
    expect(resolve('payments', undefined, 'POST', '/charges')).to.deep.equal({ route: 'create-charge', timeout: 1_000, service: 'payments' });
    expect(resolve('payments', undefined, 'GET', '/charges')).to.deep.equal({ route: undefined, timeout: 8_000, service: 'payments' });
  });

  it('matches a :param segment, any of a list of methods, and one trailing slash', () => {
    expect(resolve('payments', undefined, 'GET', '/charges/ch_1')).to.include({ route: 'get-charge', timeout: 2_000 });
    expect(resolve('payments', undefined, 'HEAD', '/charges/ch_1/')).to.include({ route: 'get-charge' });
    expect(resolve('payments', undefined, 'DELETE', '/charges/ch_1')).to.include({ route: undefined, timeout: 8_000 });
    expect(resolve('payments', undefined, 'GET', '/charges/')).to.include({ route: undefined });
    expect(resolve('payments', undefined, 'GET', '/charges/a/b')).to.include({ route: undefined });
  });

  it('matches a trailing /* against the prefix itself and anything below it, for any method without match.method', () => {
    expect(resolve('payments', undefined, 'POST', '/charges/ch_1/refunds')).to.include({ route: 'refunds', timeout: 3_000 });
    expect(resolve('payments', undefined, 'GET', '/charges/ch_1/refunds/r_9')).to.include({ route: 'refunds' });
    expect(resolve('payments', undefined, 'PATCH', '/charges/ch_1/refunds/r_9/x/y')).to.include({ route: 'refunds' });
    expect(resolve('payments', undefined, 'GET', '/charges/ch_1/refundsX')).to.include({ route: undefined });
  });

  it('prefers an exact path to a prefix listed before it (Gateway API precedence, docs/routing.md)', () => {
    expect(resolve('payments', undefined, 'GET', '/admin/users')).to.include({ route: 'also-admin', timeout: 5_000 });
    expect(resolve('payments', undefined, 'GET', '/admin/groups')).to.include({ route: 'admin', timeout: 4_000 });
  });

  it('ignores the query string when matching', () => {
    expect(resolve('payments', undefined, 'GET', '/charges/ch_1?expand=customer&x=/y')).to.include({ route: 'get-charge' });
    expect(resolve('payments', undefined, 'POST', '/charges?dry-run=1')).to.include({ route: 'create-charge' });
  });

  it('selects a route by name whatever the method and path', () => {
    expect(resolve('payments', 'also-admin', 'DELETE', '/anything')).to.deep.equal({ route: 'also-admin', timeout: 5_000, service: 'payments' });
    expect(resolve('payments', 'create-charge', 'GET', '/charges/1')).to.include({ route: 'create-charge', timeout: 1_000 });
  });

  it('keeps a route name that policy does not know, and still matches the path for the policy', () => {
    expect(resolve('payments', 'getCharge', 'GET', '/charges/1')).to.include({ route: 'getCharge', timeout: 2_000 });
    expect(resolve('payments', 'listThings', 'GET', '/things')).to.include({ route: 'listThings', timeout: 8_000 });
  });

  it('uses the service policy for a service without routes, and the defaults for an unknown service', () => {
    expect(resolve('plain', undefined, 'GET', '/charges')).to.deep.equal({ route: undefined, timeout: 7_000, service: 'plain' });
    expect(resolve('nobody', 'r', 'GET', '/')).to.deep.equal({ route: 'r', timeout: 9_000, service: undefined });
  });

  it('compiles path patterns that escape regular expression characters', () => {
    expect(compilePathPattern('/v1.0/items').test('/v1.0/items')).to.equal(true);
    expect(compilePathPattern('/v1.0/items').test('/v1x0/items')).to.equal(false);
    expect(compilePathPattern('/a+b/:id').test('/a+b/3')).to.equal(true);
    expect(compilePathPattern('/*').test('/anything/at/all')).to.equal(true);
    expect(compilePathPattern('/*').test('/')).to.equal(true);
  });
});
