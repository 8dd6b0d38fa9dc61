import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT } from '../../lib/cli/policy.ts';
import { ADMIN_TOKEN, paymentsPolicy, startTestControlPlane } from '../helpers/control-plane.ts';
import type { TestControlPlane } from '../helpers/control-plane.ts';
import { generateCerts } from '../helpers/certs.ts';
import { runCli } from '../helpers/processes.ts';

describe('meshfetch policy (CLI)', function () {
  this.timeout(20_000);
  let t: TestControlPlane;
  const file = (name: string, text: string): string => {
    const path = join(t.dir, name);
    writeFileSync(path, text);
    return path;
  };
  const good = () => file('good.yaml', 'apiVersion: meshfetch/v1\nservices:\n  payments:\n    endpoints: ["http://127.0.0.1:9002"]\n');
  const bad = () => file('bad.yaml', 'apiVersion: meshfetch/v1\nservices:\n  payments:\n    retry: { atempts: 2 }\n');
  const admin = { MESHFETCH_ADMIN_TOKEN: ADMIN_TOKEN };

  before(async () => {
    t = await startTestControlPlane(paymentsPolicy('http://127.0.0.1:9001'), { logLevel: 'silent' });
  });
  after(() => t.close());

  it('validate: 0 and the revision for a valid file; 1 and each bad path for an invalid one; -o json for scripts', async () => {
    const ok = await runCli(['policy', 'validate', good()]);
    expect(ok.code).to.equal(EXIT.ok);
    expect(ok.stdout).to.match(/good\.yaml: valid \(revision [0-9a-f]{16}\)/);
    const refused = await runCli(['policy', 'validate', bad()]);
    expect(refused.code).to.equal(EXIT.refused);
    expect(refused.stderr).to.contain('services.payments.retry.atempts: unknown key');
    const json = await runCli(['policy', 'validate', bad(), '-o', 'json']);
    expect(json.code).to.equal(EXIT.refused);
    expect(JSON.parse(json.stdout)).to.deep.include({ valid: false, problems: ['services.payments.retry.atempts: unknown key; did you mean "attempts"?'] });
  });

  it('get, apply, apply --if-match (2 on conflict), history and rollback against a real control plane', async () => {
    const cp = ['--control-plane', t.url];
    const got = await runCli(['policy', 'get', ...cp, '-o', 'json']);
    expect(got.code).to.equal(EXIT.ok);
    const before = (JSON.parse(got.stdout) as { revision: string }).revision;
    expect(before).to.equal(t.cp.revision());
    expect((await runCli(['policy', 'get', ...cp])).stdout).to.match(new RegExp(`^# revision ${before}\\napiVersion: meshfetch/v1`));

    const applied = await runCli(['policy', 'apply', good(), ...cp, '--if-match', before], admin);
    expect(applied.code, applied.stderr).to.equal(EXIT.ok);
    expect(applied.stdout).to.equal(`published revision ${t.cp.revision()} (was ${before})\n`);

    const conflict = await runCli(['policy', 'apply', good(), ...cp, '--if-match', before], admin);
    expect(conflict.code).to.equal(EXIT.conflict);
    expect(conflict.stderr).to.contain(`the current revision is ${t.cp.revision()}`);

    const history = await runCli(['policy', 'history', ...cp, '-o', 'json']);
    expect((JSON.parse(history.stdout) as { revision: string }[]).map((r) => r.revision)).to.deep.equal([t.cp.revision(), before]);

    const rolled = await runCli(['policy', 'rollback', ...cp], admin);
    expect(rolled.code, rolled.stderr).to.equal(EXIT.ok);
    expect(t.cp.revision()).to.equal(before);
  });

  it('apply: 1 for an invalid document or a missing token, naming the problem; the policy unchanged', async () => {
    const before = t.cp.revision();
    const invalid = await runCli(['policy', 'apply', bad(), '--control-plane', t.url], admin);
    expect(invalid.code).to.equal(EXIT.refused);
    expect(invalid.stderr).to.contain('services.payments.retry.atempts: unknown key');
    const noToken = await runCli(['policy', 'apply', good()], { MESHFETCH_CONTROL_PLANE: t.url });
    expect(noToken.code).to.equal(EXIT.refused);
    expect(noToken.stderr).to.contain('Authorization header: missing');
    expect(t.cp.revision()).to.equal(before);
  });

  it('presents the MESHFETCH_TLS_* client certificate to a control plane that requires one', async () => {
    const certs = await generateCerts();
    const secure = await startTestControlPlane(paymentsPolicy('http://127.0.0.1:9001'), { logLevel: 'silent', tls: { cert: certs.server.cert, key: certs.server.key, ca: certs.ca } });
    try {
      const tls = { MESHFETCH_TLS_CERT: file('c.crt', certs.client.cert), MESHFETCH_TLS_KEY: file('c.key', certs.client.key), MESHFETCH_TLS_CA: file('ca.crt', certs.ca) };
      const got = await runCli(['policy', 'get', '--control-plane', secure.url, '-o', 'json'], tls);
      expect(got.code, got.stderr).to.equal(EXIT.ok);
      expect(JSON.parse(got.stdout)).to.have.property('revision', secure.cp.revision());
      const anonymous = await runCli(['policy', 'get', '--control-plane', secure.url], { MESHFETCH_TLS_CA: tls.MESHFETCH_TLS_CA });
      expect(anonymous.code).to.equal(EXIT.unreachable);
    } finally {
      await secure.close();
    }
  });

  it('3 when the control plane cannot be reached; 1 when none is named', async () => {
    const down = await runCli(['policy', 'get', '--control-plane', 'http://127.0.0.1:1']);
    expect(down.code).to.equal(EXIT.unreachable);
    expect(down.stderr).to.contain('cannot reach the control plane at http://127.0.0.1:1');
    const none = await runCli(['policy', 'clients']);
    expect(none.code).to.equal(1);
    expect(none.stderr).to.contain('MESHFETCH_CONTROL_PLANE is not set');
  });
});
