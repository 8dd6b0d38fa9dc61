import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { Pool } from 'undici';
import { ADMIN_TOKEN, paymentsPolicy, startTestControlPlane } from '../helpers/control-plane.ts';
import type { TestControlPlane } from '../helpers/control-plane.ts';

interface HostileRequest {
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
  /** The status this request must get; undefined: any 4xx. */
  expect?: number;
}

const MAX_BODY = 16_384;
const ROUTES = new Set(['/v1/policy', '/v1/policy/watch', '/v1/policy/rollback', '/v1/policy/history', '/v1/clients', '/v1/clients/report', '/healthz', '/metrics', '/', '/v1/reports', '/v1/stats', '/v1/dashboard/stream']);
const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
const valid = paymentsPolicy('http://127.0.0.1:9002', { retry: { attempts: 2 } });
const contentTypes = fc.constantFrom('application/json', 'application/yaml', 'text/yaml', undefined, 'text/plain', 'application/json; charset=utf-8');
const withType = (type: string | undefined): Record<string, string> => (type === undefined ? {} : { 'content-type': type });
const put = (kind: string, body: string | Uint8Array, headers: Record<string, string>, expected?: number): HostileRequest => ({
  kind,
  method: 'PUT',
  path: '/v1/policy',
  headers: { ...auth, ...headers },
  body,
  expect: expected,
});

/** Text that is not a policy document: any string (it may even parse as JSON or YAML, just never validly). */
const garbageText = fc.tuple(fc.string({ maxLength: 200 }), contentTypes).map(([text, type]) => put('garbage text', text, withType(type)));

const garbageBytes = fc.uint8Array({ maxLength: 300 }).map((bytes) => put('garbage bytes', bytes, { 'content-type': 'application/json' }));

/** A valid document with one poisoned spot: an unknown key anywhere, or a known key given a wrong value. */
const poisoned = fc
  .oneof(
    fc.tuple(fc.constantFrom('', 'defaults', 'services.payments', 'services.payments.retry'), fc.string({ minLength: 1, maxLength: 12 }).map((k) => `x-${k}`), fc.jsonValue()).map(([at, key, value]) => {
      const doc = structuredClone(valid) as Record<string, unknown>;
      const target = at === '' ? doc : at.split('.').reduce<Record<string, unknown>>((node, part) => (node[part] ??= {}) as Record<string, unknown>, doc);
      target[key] = value;
      return doc;
    }),
    fc.string().filter((v) => v !== 'meshfetch/v1').map((apiVersion) => ({ ...valid, apiVersion })),
    fc.oneof(fc.integer({ min: 11 }), fc.integer({ max: 0 }), fc.string(), fc.boolean()).map((attempts) => paymentsPolicy('http://127.0.0.1:9002', { retry: { attempts } })),
    fc.oneof(fc.string().filter((s) => !/^https?:\/\/[^/\s]+(\/\S*)?$/.test(s)), fc.integer()).map((endpoint) => paymentsPolicy(endpoint as string)),
    fc.string({ minLength: 1 }).filter((name) => !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)).map((name) => ({ apiVersion: 'meshfetch/v1', services: { [name]: {} } })),
  )
  .map((doc) => put('schema error', JSON.stringify(doc), { 'content-type': 'application/json' }, 422));

/** Nesting past the limit, as JSON lists or objects, somewhere in an otherwise plausible document. */
const tooDeep = fc.tuple(fc.integer({ min: 33, max: 400 }), fc.boolean()).map(([depth, lists]) => {
  const nested = lists ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
  return put('deep nesting', `{"apiVersion":"meshfetch/v1","defaults":${nested}}`, { 'content-type': 'application/json' }, 400);
});

const oversized = fc.integer({ min: MAX_BODY + 1, max: MAX_BODY * 2 }).map((size) => put('oversized', `{"apiVersion":"meshfetch/v1","x":"${'y'.repeat(size)}"}`, { 'content-type': 'application/json' }, 413));

/** A valid document without the right token. */
const badToken = fc
  .oneof(
    fc.constant<Record<string, string>>({}),
    fc.stringMatching(/^[\x21-\x7e]{1,64}$/).filter((t) => t !== ADMIN_TOKEN).map((t) => ({ authorization: `Bearer ${t}` })),
    fc.stringMatching(/^[\x20-\x7e]{0,64}$/).map((t) => ({ authorization: t })),
  )
  .map((headers) => ({ kind: 'bad token', method: 'PUT', path: '/v1/policy', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(valid) }));

/** A valid document and token, but If-Match names a revision that is not current: 412, nothing published. */
const staleIfMatch = fc.stringMatching(/^[\x21\x23-\x7e]{1,40}$/).map((tag) => put('stale If-Match', JSON.stringify(valid), { 'content-type': 'application/json', 'if-match': `"${tag}"` }, 412));

const pathSegment = fc.string({ maxLength: 12 }).map(encodeURIComponent);
const unknownRoute = fc
  .tuple(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'), fc.array(pathSegment, { minLength: 1, maxLength: 4 }), fc.string({ maxLength: 20 }))
  .map(([method, segments, query]) => ({ kind: 'unknown route', method, path: `/${segments.join('/')}`, query }))
  .filter(({ path }) => !ROUTES.has(path))
  .map(({ kind, method, path, query }) => ({ kind, method, path: `${path}?${encodeURIComponent(query)}`, headers: {}, expect: 404 }));

const wrongMethod = fc
  .constantFrom(['DELETE', '/v1/policy'], ['PATCH', '/v1/policy'], ['POST', '/v1/policy'], ['GET', '/v1/policy/rollback'], ['PUT', '/v1/clients'], ['DELETE', '/healthz'], ['POST', '/metrics'], ['GET', '/v1/clients/report'], ['GET', '/v1/reports'], ['POST', '/v1/stats'])
  .map(([method, path]) => ({ kind: 'wrong method', method: method!, path: path!, headers: auth, expect: 405 }));

const badRollback = fc
  .oneof(fc.constant(''), fc.string({ maxLength: 60 }), fc.jsonValue().map((v) => JSON.stringify({ revision: v })))
  .map((body) => ({ kind: 'bad rollback', method: 'POST', path: '/v1/policy/rollback', headers: { ...auth, 'content-type': 'application/json' }, body }));

/** A client report that is wrong in at least its status field. */
const badReport = fc
  .record({ service: fc.string(), instance: fc.string(), revision: fc.jsonValue(), status: fc.string().filter((s) => s !== 'applied' && s !== 'rejected'), error: fc.jsonValue() }, { requiredKeys: [] })
  .map((report) => ({ kind: 'bad report', method: 'POST', path: '/v1/clients/report', headers: { 'content-type': 'application/json' }, body: JSON.stringify(report), expect: 400 }));

/** A stats report wrong somewhere: another version, a bad identity, edges that are not edges, a count that is not a count, bins that are not bins. */
const goodEdge: unknown[] = ['payments', 'charge', 'closed', 60_000, 1, 1, 0, 0, 1, 1, 0, 0, 0, null];
const statsReport = (edges: fc.Arbitrary<unknown[]>) => fc.record({ v: fc.constant(2), service: fc.constant('checkout'), instance: fc.constant('i-1'), edges });
const badStatsReport = fc
  .oneof(
    fc.record({ v: fc.jsonValue().filter((v) => v !== 2), service: fc.constant('checkout'), instance: fc.constant('i-1'), edges: fc.constant([goodEdge]) }, { requiredKeys: ['service', 'instance', 'edges'] }),
    fc.record({ v: fc.constant(2), service: fc.string().filter((s) => !/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(s)), instance: fc.constant('i-1'), edges: fc.constant([]) }),
    statsReport(fc.array(fc.jsonValue().filter((v) => v !== null && typeof v !== 'object'), { minLength: 1, maxLength: 3 })),
    statsReport(fc.tuple(fc.nat({ max: goodEdge.length - 1 }), fc.jsonValue()).filter(([at, value]) => at !== goodEdge.length - 1 || value !== null).map(([at, value]) => [goodEdge.with(at, typeof value === 'number' ? -1 - Math.abs(value) : { bad: value })])),
    statsReport(fc.tuple(fc.integer({ min: 4, max: 12 }), fc.oneof(fc.integer({ max: -1 }), fc.double({ min: 0.1, max: 0.9 }), fc.string(), fc.constant(2e12))).map(([at, count]) => [goodEdge.with(at, count)])),
    statsReport(fc.array(fc.jsonValue(), { maxLength: 20 }).filter((edge) => edge.length !== goodEdge.length).map((edge) => [edge])),
    // Bins cut short (the last varint has its continuation bit set) or text outside base64.
    statsReport(fc.uint8Array({ maxLength: 64 }).map((bytes) => [goodEdge.with(-1, Buffer.from([...bytes, 0x80]).toString('base64'))])),
    statsReport(fc.string().map((text) => [goodEdge.with(-1, `${text}!`)])),
  )
  .map((report) => ({ kind: 'bad stats report', method: 'POST', path: '/v1/reports', headers: { 'content-type': 'application/json' }, body: JSON.stringify(report), expect: 400 }));

/** The same, as meshes send them: lines of a report stream, the first of them bad (and so the only one read). */
const badStatsStream = fc
  .tuple(badStatsReport, fc.array(badStatsReport, { maxLength: 2 }), fc.constantFrom('\n', '\r\n'))
  .map(([first, rest, newline]) => ({ ...first, kind: 'bad stats report stream', headers: { 'content-type': 'application/x-ndjson' }, body: [first, ...rest].map((r) => `${r.body}${newline}`).join('') }));

const hostile: fc.Arbitrary<HostileRequest> = fc.oneof(
  { arbitrary: garbageText, weight: 3 },
  { arbitrary: garbageBytes, weight: 1 },
  { arbitrary: poisoned, weight: 4 },
  { arbitrary: tooDeep, weight: 1 },
  { arbitrary: oversized, weight: 1 },
  { arbitrary: badToken, weight: 2 },
  { arbitrary: staleIfMatch, weight: 1 },
  { arbitrary: unknownRoute, weight: 2 },
  { arbitrary: wrongMethod, weight: 1 },
  { arbitrary: badRollback, weight: 1 },
  { arbitrary: badReport, weight: 1 },
  { arbitrary: badStatsReport, weight: 1 },
  { arbitrary: badStatsStream, weight: 1 },
);

const sha = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

describe('control plane under hostile input (property-based)', function () {
  this.timeout(60_000);
  let t: TestControlPlane;
  let pool: Pool;

  before(async () => {
    t = await startTestControlPlane(paymentsPolicy('http://127.0.0.1:9001'), { maxBodyBytes: MAX_BODY, logLevel: 'silent' });
    pool = new Pool(t.url, { connections: 8, pipelining: 1 });
  });
  after(async () => {
    await pool.close();
    await t.close();
  });

  it('answers each of 10,000 generated malformed or hostile requests with a 4xx, and neither the stored policy nor the held reports change', async () => {
    const revision = t.cp.revision();
    const file = sha(t.policyFile);
    let sent = 0;
    const seen = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(fc.array(hostile, { minLength: 10, maxLength: 10 }), async (batch) => {
        const answers = await Promise.all(
          batch.map(async (r) => {
            const res = await pool.request({ method: r.method as 'GET', path: r.path, headers: r.headers, body: r.body });
            const text = await res.body.text();
            return { request: r, status: res.statusCode, text };
          }),
        );
        for (const { request, status, text } of answers) {
          sent++;
          seen.set(request.kind, (seen.get(request.kind) ?? 0) + 1);
          const where = `${request.kind}: ${request.method} ${request.path.slice(0, 60)} → ${status} ${text.slice(0, 200)}`;
          expect(status, where).to.be.within(400, 499);
          if (request.expect !== undefined) expect(status, where).to.equal(request.expect);
          expect((JSON.parse(text) as { error: { message: string } }).error.message, where).to.be.a('string').and.not.equal('');
        }
        expect(t.cp.revision()).to.equal(revision);
      }),
      { numRuns: 1_000 },
    );
    expect(sent).to.be.at.least(10_000);
    expect([...seen.keys()]).to.have.length(13);
    const stats = await pool.request({ method: 'GET', path: '/v1/stats' });
    expect(((await stats.body.json()) as { instances: number }).instances, 'no refused report was kept').to.equal(0);
    expect(sha(t.policyFile)).to.equal(file);
    const res = await pool.request({ method: 'GET', path: '/v1/policy' });
    await res.body.dump();
    expect(res.headers.etag).to.equal(`"${revision}"`);
  });
});
