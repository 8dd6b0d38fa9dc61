import { expect } from 'chai';
import { readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, MeshError, startControlPlane } from '../../lib/index.ts';
import { ADMIN_TOKEN, openStream, paymentsPolicy, startTestControlPlane } from '../helpers/control-plane.ts';
import type { TestControlPlane, TestStream } from '../helpers/control-plane.ts';

const A = paymentsPolicy('http://127.0.0.1:9001');
const B = paymentsPolicy('http://127.0.0.1:9002');
const C = paymentsPolicy('http://127.0.0.1:9003');

interface Answer {
  status: number;
  headers: Headers;
  body: { revision?: string; previous?: string; changed?: boolean; error?: { message: string; problems?: string[]; reason: string } } & Record<string, unknown>;
}

async function call(url: string, method: string, path: string, init: { body?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const res = await fetch(`${url}${path}`, { method, headers: init.headers, body: init.body });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : {} };
}

const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };

describe('control plane server', () => {
  let t: TestControlPlane;
  const streams: TestStream[] = [];
  const watch = async (headers?: Record<string, string>): Promise<TestStream> => {
    const stream = await openStream(t.url, headers);
    streams.push(stream);
    return stream;
  };

  beforeEach(async () => {
    t = await startTestControlPlane(A, { heartbeatInterval: 50, historyLimit: 3 });
  });
  afterEach(async () => {
    streams.splice(0).forEach((s) => s.close());
    await t.close();
  });

  describe('GET /v1/policy', () => {
    it('serves the document stamped with its revision, the revision as ETag', async () => {
      const got = await call(t.url, 'GET', '/v1/policy');
      expect(got.status).to.equal(200);
      expect(got.headers.get('etag')).to.equal(`"${t.cp.revision()}"`);
      expect(got.body).to.deep.include({ ...A, revision: t.cp.revision() });
    });

    it('answers 304 to If-None-Match naming the current revision (strong, weak or in a list), 200 otherwise', async () => {
      const rev = t.cp.revision();
      for (const tag of [`"${rev}"`, `W/"${rev}"`, `"other", "${rev}"`, '*']) {
        expect((await call(t.url, 'GET', '/v1/policy', { headers: { 'if-none-match': tag } })).status, tag).to.equal(304);
      }
      expect((await call(t.url, 'GET', '/v1/policy', { headers: { 'if-none-match': '"stale"' } })).status).to.equal(200);
    });

    it('gives the same document the same revision, whatever its key order', async () => {
      const reordered = { services: A.services, apiVersion: 'meshfetch/v1' };
      const put = await t.publish(reordered);
      expect(put.status).to.equal(200);
      expect(put.body).to.include({ revision: t.cp.revision(), changed: false });
    });
  });

  describe('PUT /v1/policy', () => {
    it('publishes a valid document: new revision, the file rewritten by rename, no temporary left behind', async () => {
      const before = t.cp.revision();
      const put = await t.publish(B);
      expect(put.status).to.equal(200);
      expect(put.body).to.include({ previous: before, changed: true });
      expect(put.body.revision).to.equal(t.cp.revision()).and.not.equal(before);
      expect(JSON.parse(readFileSync(t.policyFile, 'utf8'))).to.deep.equal(B);
      expect(readdirSync(t.dir)).to.deep.equal(['policy.json']);
    });

    it('accepts YAML', async () => {
      const yaml = 'apiVersion: meshfetch/v1\nservices:\n  payments:\n    endpoints: ["http://127.0.0.1:9002"]\n';
      const put = await call(t.url, 'PUT', '/v1/policy', { body: yaml, headers: { ...auth, 'content-type': 'application/yaml' } });
      expect(put.status).to.equal(200);
      expect((await call(t.url, 'GET', '/v1/policy')).body).to.deep.include(B);
    });

    it('compare-and-swap: If-Match with a stale revision gets 412 naming the current one, and changes nothing', async () => {
      const first = t.cp.revision();
      expect((await t.publish(B, { 'if-match': `"${first}"` })).status).to.equal(200);
      const current = t.cp.revision();
      const lost = await t.publish(C, { 'if-match': `"${first}"` });
      expect(lost.status).to.equal(412);
      expect(lost.body.error?.message).to.contain(current);
      expect(t.cp.revision()).to.equal(current);
      expect(JSON.parse(readFileSync(t.policyFile, 'utf8'))).to.deep.equal(B);
    });

    it('keeps the last N revisions', async () => {
      for (const doc of [B, C, paymentsPolicy('http://127.0.0.1:9004')]) expect((await t.publish(doc)).status).to.equal(200);
      const history = (await call(t.url, 'GET', '/v1/policy/history')).body.revisions as { revision: string; current: boolean }[];
      expect(history).to.have.length(3);
      expect(history[0]).to.include({ revision: t.cp.revision(), current: true });
    });

    it('refuses a historyLimit that would not keep the revision in force, naming the option', async () => {
      for (const historyLimit of [0, -1, 2.5]) {
        const err = await startControlPlane({ policyFile: t.policyFile, historyLimit, port: 0 }).then(() => undefined, (e: unknown) => e);
        expect(err).to.be.instanceOf(MeshError);
        expect((err as MeshError).code).to.equal(ErrorCode.Config);
        expect((err as MeshError).message).to.equal(`startControlPlane option historyLimit: expected a whole number >= 1 (the revision in force is kept in it), got ${historyLimit}`);
      }
    });
  });

  describe('bad input: a 4xx naming the problem; the stored policy and file unchanged', () => {
    let fileBefore: string;
    let revisionBefore: string;
    beforeEach(() => {
      fileBefore = readFileSync(t.policyFile, 'utf8');
      revisionBefore = t.cp.revision();
    });
    afterEach(async () => {
      expect(readFileSync(t.policyFile, 'utf8')).to.equal(fileBefore);
      expect(t.cp.revision()).to.equal(revisionBefore);
      expect((await call(t.url, 'GET', '/v1/policy')).headers.get('etag')).to.equal(`"${revisionBefore}"`);
      expect(readdirSync(t.dir)).to.deep.equal(['policy.json']);
    });

    const put = (body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
      call(t.url, 'PUT', '/v1/policy', { body, headers: { ...auth, ...headers } });

    it('malformed JSON: 400', async () => {
      const got = await put('{"apiVersion": "meshfetch/v1",');
      expect(got.status).to.equal(400);
      expect(got.body.error?.message).to.match(/^request body: not valid JSON/);
    });

    it('malformed YAML: 400 with the line', async () => {
      const got = await put('apiVersion: meshfetch/v1\nservices: [\n', { 'content-type': 'application/yaml' });
      expect(got.status).to.equal(400);
      expect(got.body.error?.message).to.match(/^request body: not valid YAML: .*line/);
    });

    it('a schema error: 422 listing each bad path', async () => {
      const got = await put(JSON.stringify(paymentsPolicy('http://127.0.0.1:9002', { retry: { atempts: 2 }, timeout: 'soon' })));
      expect(got.status).to.equal(422);
      expect(got.body.error?.problems).to.include.members(['services.payments.retry.atempts: unknown key; did you mean "attempts"?']);
      expect(got.body.error?.problems?.some((p) => p.startsWith('services.payments.timeout:'))).to.equal(true);
    });

    it('not an object, or empty: 400/422', async () => {
      expect((await put('[1,2]')).status).to.equal(422);
      expect((await put('')).status).to.equal(400);
      expect((await put('"text"')).status).to.equal(422);
    });

    it('an oversized body: 413, read no further', async () => {
      const small = await startControlPlane({ policyFile: t.policyFile, adminToken: ADMIN_TOKEN, maxBodyBytes: 1024, env: {}, logLevel: 'silent' });
      try {
        const got = await call(small.url, 'PUT', '/v1/policy', { body: JSON.stringify({ ...B, padding: 'x'.repeat(4096) }), headers: auth });
        expect(got.status).to.equal(413);
        expect(got.body.error?.message).to.equal('request body: larger than 1024 bytes');
      } finally {
        await small.close();
      }
    });

    it('deep nesting: 400 naming where (JSON and YAML)', async () => {
      const deep = `{"apiVersion":"meshfetch/v1","services":${'{"a":'.repeat(200)}1${'}'.repeat(200)}}`;
      const json = await put(deep);
      expect(json.status).to.equal(400);
      expect(json.body.error?.message).to.match(/^request body: services(\.a)+: nested deeper than 32 levels/);
      const yaml = await put(`apiVersion: meshfetch/v1\nx: ${'['.repeat(5000)}${']'.repeat(5000)}\n`, { 'content-type': 'application/yaml' });
      expect(yaml.status).to.equal(400);
    });

    it('a YAML alias bomb: 400', async () => {
      const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]', 'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]', 'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]', 'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]', 'e: [*d,*d,*d,*d,*d,*d,*d,*d,*d]'].join('\n');
      const got = await put(bomb, { 'content-type': 'application/yaml' });
      expect(got.status).to.equal(400);
    });

    it('bytes that are not UTF-8, and an unsupported content type: 400 and 415', async () => {
      const bytes = await fetch(`${t.url}/v1/policy`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]) });
      expect(bytes.status).to.equal(400);
      await bytes.body?.cancel();
      const xml = await put('<policy/>', { 'content-type': 'application/xml' });
      expect(xml.status).to.equal(415);
      expect(xml.body.error?.message).to.contain('application/xml');
    });

    it('no token: 401 with a Bearer challenge; a wrong one: 403; neither echoes the token', async () => {
      const none = await call(t.url, 'PUT', '/v1/policy', { body: JSON.stringify(B) });
      expect(none.status).to.equal(401);
      expect(none.headers.get('www-authenticate')).to.match(/^Bearer/);
      const wrong = await call(t.url, 'PUT', '/v1/policy', { body: JSON.stringify(B), headers: { authorization: 'Bearer guessed-token-guessed-token' } });
      expect(wrong.status).to.equal(403);
      const basic = await call(t.url, 'PUT', '/v1/policy', { body: JSON.stringify(B), headers: { authorization: `Basic ${ADMIN_TOKEN}` } });
      expect(basic.status).to.equal(401);
      const rollback = await call(t.url, 'POST', '/v1/policy/rollback', { headers: { authorization: 'Bearer guessed-token-guessed-token' } });
      expect(rollback.status).to.equal(403);
      const logged = JSON.stringify(t.logger.lines) + JSON.stringify([none.body, wrong.body, basic.body]);
      expect(logged).to.not.contain(ADMIN_TOKEN).and.not.contain('guessed-token');
    });

    it('writes are refused (403) when the control plane has no admin token', async () => {
      const readOnly = await startControlPlane({ policyFile: t.policyFile, env: {}, logLevel: 'silent' });
      try {
        const got = await call(readOnly.url, 'PUT', '/v1/policy', { body: JSON.stringify(B), headers: auth });
        expect(got.status).to.equal(403);
        expect(got.body.error?.message).to.contain('MESHFETCH_ADMIN_TOKEN');
      } finally {
        await readOnly.close();
      }
    });

    it('unknown routes: 404 naming the path; wrong methods: 405 with Allow', async () => {
      const missing = await call(t.url, 'GET', '/v2/policy');
      expect(missing.status).to.equal(404);
      expect(missing.body.error?.message).to.match(/^GET \/v2\/policy: no such route/);
      const wrong = await call(t.url, 'DELETE', '/v1/policy');
      expect(wrong.status).to.equal(405);
      expect(wrong.headers.get('allow')).to.equal('GET, HEAD, PUT');
    });

    it('rollback: unknown revision 404, nothing to roll back to 409, a bad body 400', async () => {
      const unknown = await call(t.url, 'POST', '/v1/policy/rollback', { body: '{"revision":"nope"}', headers: auth });
      expect(unknown.status).to.equal(404);
      expect(unknown.body.error?.message).to.contain('"nope"');
      expect((await call(t.url, 'POST', '/v1/policy/rollback', { headers: auth })).status).to.equal(409);
      expect((await call(t.url, 'POST', '/v1/policy/rollback', { body: '{', headers: auth })).status).to.equal(400);
      expect((await call(t.url, 'POST', '/v1/policy/rollback', { body: '{"revision":5}', headers: auth })).status).to.equal(400);
    });

    it('a malformed client report: 400 naming the field', async () => {
      const got = await call(t.url, 'POST', '/v1/clients/report', { body: JSON.stringify({ service: 'a b', instance: 'i', status: 'applied' }) });
      expect(got.status).to.equal(400);
      expect(got.body.error?.message).to.match(/^service: expected/);
    });
  });

  describe('POST /v1/policy/rollback', () => {
    it('publishes the previous revision again, or one named from history', async () => {
      const a = t.cp.revision();
      await t.publish(B);
      const b = t.cp.revision();
      await t.publish(C);
      const back = await call(t.url, 'POST', '/v1/policy/rollback', { headers: auth });
      expect(back.status).to.equal(200);
      expect(back.body.revision).to.equal(b);
      expect(JSON.parse(readFileSync(t.policyFile, 'utf8'))).to.deep.equal(B);
      const toA = await call(t.url, 'POST', '/v1/policy/rollback', { body: JSON.stringify({ revision: a }), headers: { ...auth, 'if-match': `"${b}"` } });
      expect(toA.status).to.equal(200);
      expect(t.cp.revision()).to.equal(a);
    });
  });

  describe('watch', () => {
    it('sends the current revision, then each new one, with heartbeats in between', async () => {
      const stream = await watch();
      expect(stream.status).to.equal(200);
      expect(stream.headers['content-type']).to.equal('text/event-stream');
      expect(stream.headers['x-meshfetch-heartbeat']).to.equal('50');
      const first = await stream.nextEvent();
      expect(first).to.include({ event: 'policy', id: t.cp.revision() });
      await stream.nextHeartbeat();
      await t.publish(B);
      const second = await stream.nextEvent();
      expect(second.id).to.equal(t.cp.revision());
      expect(JSON.parse(second.data)).to.deep.include(B);
    });

    it('skips the first event for a client that already has the current revision (Last-Event-ID)', async () => {
      const stream = await watch({ 'last-event-id': t.cp.revision() });
      await stream.nextHeartbeat();
      await t.publish(B);
      expect((await stream.nextEvent()).id).to.equal(t.cp.revision());
    });

    it('answers a HEAD of the watch at once, without holding it open', async () => {
      const head = await call(t.url, 'HEAD', '/v1/policy/watch');
      expect(head.status).to.equal(200);
      expect(head.headers.get('content-type')).to.equal('text/event-stream');
      expect((await call(t.url, 'GET', '/healthz')).body).to.include({ watchers: 0 });
    });

    it('refuses a watch past maxWatchers with 503 and Retry-After', async () => {
      const capped = await startControlPlane({ policyFile: t.policyFile, env: {}, logLevel: 'silent', maxWatchers: 1 });
      try {
        const held = await openStream(capped.url);
        streams.push(held);
        await held.nextEvent();
        const refused = await call(capped.url, 'GET', '/v1/policy/watch');
        expect(refused.status).to.equal(503);
        expect(refused.headers.get('retry-after')).to.equal('5');
        expect(refused.body.error?.message).to.contain('at most 1 open streams');
      } finally {
        await capped.close();
      }
    });

    it('counts open streams in /metrics and /healthz, and names the client in /v1/clients', async () => {
      const stream = await watch({ 'x-meshfetch-service': 'checkout', 'x-meshfetch-instance': 'checkout-1' });
      await stream.nextEvent();
      const metrics = await (await fetch(`${t.url}/metrics`)).text();
      expect(metrics).to.match(/^meshfetch_control_plane_watchers 1$/m);
      expect(metrics).to.match(new RegExp(`^meshfetch_control_plane_revision_info\\{revision="${t.cp.revision()}"\\} 1$`, 'm'));
      expect(metrics).to.match(/^meshfetch_control_plane_pushes_total 1$/m);
      expect((await call(t.url, 'GET', '/healthz')).body).to.include({ status: 'ok', watchers: 1 });
      const clients = (await call(t.url, 'GET', '/v1/clients')).body.clients as { service: string; instance: string; watching: number }[];
      expect(clients).to.deep.equal([{ ...clients[0], service: 'checkout', instance: 'checkout-1', watching: 1 }]);
    });
  });

  describe('the policy file is the store', () => {
    it('a hand edit publishes a new revision to watchers', async () => {
      const stream = await watch();
      await stream.nextEvent();
      writeFileSync(t.policyFile, JSON.stringify(B));
      const edited = await stream.nextEvent();
      expect(JSON.parse(edited.data)).to.deep.include(B);
      expect(t.cp.revision()).to.equal(edited.id);
    });

    it('an edit that does not change the document (reformatting, key order, a touch) publishes nothing', async () => {
      const stream = await watch();
      const first = await stream.nextEvent();
      const seen = t.logger.next('the document is unchanged');
      writeFileSync(t.policyFile, JSON.stringify({ services: A.services, apiVersion: A.apiVersion }, null, 8));
      expect(await seen).to.include({ revision: first.id });
      writeFileSync(t.policyFile, JSON.stringify(B));
      const next = await stream.nextEvent();
      expect(JSON.parse(next.data)).to.deep.include(B);
      expect(next.id).to.not.equal(first.id);
      const history = (await call(t.url, 'GET', '/v1/policy/history')).body.revisions as unknown[];
      expect(history).to.have.length(2);
    });

    it('an editor that replaces the file by rename publishes too', async () => {
      const stream = await watch();
      await stream.nextEvent();
      writeFileSync(join(t.dir, 'policy.json.swp'), JSON.stringify(C));
      renameSync(join(t.dir, 'policy.json.swp'), t.policyFile);
      expect(JSON.parse((await stream.nextEvent()).data)).to.deep.include(C);
    });

    it('a broken hand edit is refused with a log line; the revision stays; fixing the file publishes', async () => {
      const stream = await watch();
      await stream.nextEvent();
      const before = t.cp.revision();
      const refused = t.logger.next('policy file edit refused');
      writeFileSync(t.policyFile, JSON.stringify(paymentsPolicy('http://127.0.0.1:9002', { retry: { atempts: 1 } })));
      expect((await refused)?.error).to.contain('services.payments.retry.atempts: unknown key');
      expect(t.cp.revision()).to.equal(before);
      expect((await call(t.url, 'GET', '/v1/policy')).headers.get('etag')).to.equal(`"${before}"`);
      writeFileSync(t.policyFile, JSON.stringify(B));
      expect(JSON.parse((await stream.nextEvent()).data)).to.deep.include(B);
      expect(await (await fetch(`${t.url}/metrics`)).text()).to.match(/^meshfetch_control_plane_rejects_total\{reason="file-edit"\} 1$/m);
    });

    it('refuses to start on a file that does not validate, naming the file and the path', async () => {
      writeFileSync(join(t.dir, 'bad.yaml'), 'apiVersion: meshfetch/v1\ndefaults: { timeout: soon }\n');
      let caught: unknown;
      await startControlPlane({ policyFile: join(t.dir, 'bad.yaml'), env: {} }).catch((err: unknown) => (caught = err));
      expect(String(caught)).to.contain('bad.yaml').and.contain('defaults.timeout');
    });
  });
});
