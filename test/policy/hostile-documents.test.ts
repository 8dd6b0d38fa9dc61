import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMesh, ErrorCode, MeshError } from '../../lib/index.ts';
import { compilePolicy } from '../../lib/policy/compile.ts';
import { loadPolicyFile } from '../../lib/policy/load.ts';
import { Harness, TRANSPORTS, recordEvents, upPolicy } from '../helpers/fault-server.ts';
import { thrownMeshError } from '../helpers/rejection.ts';

const V1 = 'meshfetch/v1';
const LIMIT = 'a duration of at most 2147483647ms (about 24.8 days, the longest a timer can wait)';

/** The problem lines of the MESHFETCH_CONFIG error `fn` throws. */
function problems(fn: () => unknown): string[] {
  return thrownMeshError(fn, ErrorCode.Config).message.split('\n').slice(1).map((line) => line.trim());
}

describe('policy: hostile documents', function () {
  it('refuses durations longer than a timer can hold (they would fire after 1 ms), naming the path and the limit', function () {
    const lines = problems(() =>
      compilePolicy(
        {
          apiVersion: V1,
          defaults: { timeout: '600h', perTryTimeout: '99999999999999999999h' },
          services: { a: { hedge: { delay: '600h' }, retry: { backoff: { max: '25000h' }, retryAfter: { max: '1000h' } }, connectTimeout: '597h' } },
        },
        'test',
      ),
    );
    expect(lines).to.have.members([
      `defaults.timeout: expected ${LIMIT}, got "600h"`,
      `defaults.perTryTimeout: expected ${LIMIT}, got "99999999999999999999h"`,
      'services.a.hedge.delay: expected a duration of at most 2147483647ms or "p95", got "600h"',
      `services.a.retry.backoff.max: expected ${LIMIT}, got "25000h"`,
      `services.a.retry.retryAfter.max: expected ${LIMIT}, got "1000h"`,
      `services.a.connectTimeout: expected ${LIMIT}, got "597h"`,
    ]);
  });

  it('refuses a readyTimeout no timer can hold, naming the option', function () {
    for (const readyTimeout of [2 ** 31, -1, 1.5, Number.NaN]) {
      expect(() => createMesh({ env: {}, readyTimeout })).to.throw(MeshError, 'createMesh option readyTimeout: expected whole milliseconds from 0 to 2147483647');
    }
  });

  it('refuses endpoint URLs that do not parse with MESHFETCH_CONFIG naming the path, from createMesh() and setPolicy()', function () {
    const bad = { apiVersion: V1, services: { a: { endpoints: ['http://[::1'] }, b: { baseUrl: 'http://a:99999' }, c: { endpoints: ['http://ok:1', 'http://%zz'] } } };
    const expected = [
      'services.a.endpoints[0]: expected an http:// or https:// URL (the URL does not parse: check the host, the port (1-65535) and any %-escapes), got "http://[::1"',
      'services.b.baseUrl: expected an http:// or https:// URL (the URL does not parse: check the host, the port (1-65535) and any %-escapes), got "http://a:99999"',
      'services.c.endpoints[1]: expected an http:// or https:// URL (the URL does not parse: check the host, the port (1-65535) and any %-escapes), got "http://%zz"',
    ];
    expect(problems(() => createMesh({ env: {}, policy: bad as never }))).to.deep.equal(expected);
    const mesh = createMesh({ env: {}, policy: { apiVersion: V1, revision: 'good' } });
    try {
      expect(problems(() => mesh.setPolicy(bad))).to.deep.equal(expected);
      expect(mesh.policyRevision).to.equal('good'); // the policy in force stays
      expect(problems(() => mesh.setPolicy({ apiVersion: V1, services: { a: { endpoints: ['https://u:pw@h'] }, b: { baseUrl: 'http://h/api?x=1' } } }))).to.deep.equal([
        'services.a.endpoints[0]: expected an http:// or https:// URL (credentials in an endpoint URL are not allowed; send them in a header), got "https://u:pw@h"',
        'services.b.baseUrl: expected an http:// or https:// URL (an endpoint is an origin and an optional base path, without ? or #), got "http://h/api?x=1"',
      ]);
    } finally {
      void mesh.close();
    }
  });

  it('refuses keys named after Object.prototype members at every level, and a top-level __proto__', function () {
    const doc = JSON.parse(`{
      "apiVersion": "meshfetch/v1",
      "__proto__": { "defaults": { "timeout": "1ms" } },
      "defaults": { "constructor": "x", "retry": { "hasOwnProperty": 1 } },
      "services": { "a": { "toString": "x", "routes": [{ "name": "r", "match": { "path": "/", "valueOf": 1 } }] } }
    }`) as unknown;
    expect(problems(() => compilePolicy(doc, 'test'))).to.have.members([
      '__proto__: unknown key',
      'defaults.constructor: unknown key',
      'defaults.retry.hasOwnProperty: unknown key',
      'services.a.toString: unknown key',
      'services.a.routes[0].match.valueOf: unknown key',
    ]);
  });

  it('accepts a service named like an Object.prototype member, as a service', function () {
    const policy = compilePolicy({ apiVersion: V1, services: { constructor: { endpoints: ['http://127.0.0.1:1'] } } }, 'test');
    expect(policy.services.get('constructor')!.endpoints).to.deep.equal([{ origin: 'http://127.0.0.1:1', basePath: '', url: 'http://127.0.0.1:1' }]);
    expect(policy.services.get('toString')).to.equal(undefined);
  });

  it('reads JSON and YAML policy files that start with a byte-order mark', function () {
    const dir = mkdtempSync(join(tmpdir(), 'meshfetch-bom-'));
    try {
      const json = join(dir, 'policy.json');
      writeFileSync(json, `\uFEFF${JSON.stringify({ apiVersion: V1, revision: 'bom-json' })}`);
      expect(loadPolicyFile(json).revision).to.equal('bom-json');
      const yaml = join(dir, 'policy.yaml');
      writeFileSync(yaml, '\uFEFFapiVersion: meshfetch/v1\nrevision: bom-yaml\n');
      expect(loadPolicyFile(yaml).revision).to.equal('bom-yaml');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

for (const { name, create } of TRANSPORTS) {
  describe(`policy: the longest durations allowed (${name} transport, real loopback)`, function () {
    const h = new Harness(create);
    afterEach(() => h.close());

    it('596h for timeout, perTryTimeout and hedge.delay is a long wait, not a 1 ms timer', async function () {
      const srv = await h.server([{ delay: 30, then: { status: 200, body: 'waited' } }]);
      const long = '596h' as const; // 2,145,600,000 ms, just under 2^31 - 1
      const mesh = h.mesh(upPolicy(srv.origin, { routes: [{ name: 'r', match: { path: '/' }, hedge: { delay: long } }] }, { timeout: long, perTryTimeout: long }));
      const events = recordEvents(mesh);
      expect(await (await mesh.client('up').fetch('/')).text()).to.equal('waited');
      expect(events.hedge).to.deep.equal([]);
      expect(srv.requests.length).to.equal(1);
    });
  });
}
