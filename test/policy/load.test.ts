import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, MeshError } from '../../lib/index.ts';
import { loadPolicyFile, parsePolicyText } from '../../lib/policy/load.ts';
import { thrownMeshError } from '../helpers/rejection.ts';

function configFailure(fn: () => unknown): MeshError {
  return thrownMeshError(fn, ErrorCode.Config);
}

describe('policy files', () => {
  let dir: string;
  const write = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshfetch-policy-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads a YAML document', () => {
    const path = write(
      'policy.yaml',
      [
        'apiVersion: meshfetch/v1',
        'revision: "42"',
        'defaults:',
        '  timeout: 4s',
        '  rateLimit: null',
        '  retry:',
        '    attempts: 2',
        '    on: [reset, 503]',
        'services:',
        '  payments:',
        '    endpoints: ["http://127.0.0.1:8080"]',
        '    routes:',
        '      - name: create-charge',
        '        match: { method: POST, path: /charges }',
        '        timeout: 1.5s',
        '',
      ].join('\n'),
    );
    const policy = loadPolicyFile(path);
    expect(policy.revision).to.equal('42');
    expect(policy.defaults.timeout).to.equal(4_000);
    expect(policy.defaults.retry?.attempts).to.equal(2);
    expect(policy.defaults.retry?.on).to.deep.equal(['reset', 503]);
    const payments = policy.services.get('payments')!;
    expect(payments.endpoints).to.deep.equal([{ origin: 'http://127.0.0.1:8080', basePath: '', url: 'http://127.0.0.1:8080' }]);
    expect(payments.routesByName.get('create-charge')!.policy.timeout).to.equal(1_500);
  });

  it('loads a JSON document, whatever the file is called', () => {
    const doc = { apiVersion: 'meshfetch/v1', services: { a: { baseUrl: 'http://127.0.0.1:9/x', circuitBreaker: null } } };
    for (const name of ['policy.json', 'policy.conf']) {
      const policy = loadPolicyFile(write(name, `\n  ${JSON.stringify(doc, null, 2)}\n`));
      expect(policy.services.get('a')!.endpoints).to.deep.equal([{ origin: 'http://127.0.0.1:9', basePath: '/x', url: 'http://127.0.0.1:9/x' }]);
      expect(policy.services.get('a')!.policy.circuitBreaker).to.equal(null);
    }
  });

  it('reports a file that does not exist, naming it', () => {
    const path = join(dir, 'missing.yaml');
    const error = configFailure(() => loadPolicyFile(path));
    expect(error.message).to.equal(`cannot read policy file ${path}: ENOENT`);
    expect((error.cause as NodeJS.ErrnoException).code).to.equal('ENOENT');
  });

  it('reports a path that cannot be read as a file, naming it', () => {
    const path = join(dir, 'a-directory.yaml');
    mkdirSync(path);
    const error = configFailure(() => loadPolicyFile(path));
    expect(error.message).to.equal(`cannot read policy file ${path}: EISDIR`);
  });

  it('reports YAML that does not parse, naming the file, line and column', () => {
    const path = write('broken.yaml', 'apiVersion: meshfetch/v1\nservices: [1, 2\n');
    const error = configFailure(() => loadPolicyFile(path));
    expect(error.message).to.match(new RegExp(`^cannot parse policy from ${path}: `));
    expect(error.message).to.match(/at line \d+, column \d+/);
    expect(error.cause).to.be.instanceOf(Error);
  });

  it('reports YAML with a key given twice', () => {
    const path = write('twice.yaml', 'apiVersion: meshfetch/v1\napiVersion: meshfetch/v1\n');
    const error = configFailure(() => loadPolicyFile(path));
    expect(error.message).to.match(new RegExp(`^cannot parse policy from ${path}: Map keys must be unique`));
  });

  it('reports JSON that does not parse, naming the file', () => {
    const path = write('broken.json', '{ "apiVersion": "meshfetch/v1", ');
    const error = configFailure(() => loadPolicyFile(path));
    expect(error.message).to.match(new RegExp(`^cannot parse policy from ${path}: `));
    expect(error.cause).to.be.instanceOf(SyntaxError);
  });

  it('reports a document that parses but is not valid, naming the file and each bad path', () => {
    const path = write('invalid.yaml', 'apiVersion: meshfetch/v1\nservices:\n  payments:\n    retry: { atempts: 2 }\n    timeout: soon\n');
    const error = configFailure(() => loadPolicyFile(path));
    expect(error.message).to.equal(
      `invalid policy from ${path}:\n` +
        '  services.payments.retry.atempts: unknown key; did you mean "attempts"? (line 4)\n' +
        '  services.payments.timeout: expected a duration such as "250ms", "10s" or "1m", got "soon" (line 5)',
    );
  });

  it('reports an empty file as a document that is not an object', () => {
    const path = write('empty.yaml', '');
    const error = configFailure(() => loadPolicyFile(path));
    expect(error.message).to.equal(`invalid policy from ${path}:\n  (document): expected an object, got null`);
  });

  it('names the origin it is given instead of the path when asked', () => {
    const path = write('cached.yaml', 'apiVersion: meshfetch/v2\n');
    const error = configFailure(() => loadPolicyFile(path, 'the policy cache'));
    expect(error.message).to.equal('invalid policy from the policy cache:\n  apiVersion: expected one of meshfetch/v1, got "meshfetch/v2" (line 1)');
  });

  it('parses text as JSON when it starts with "{", and as YAML otherwise', () => {
    expect(parsePolicyText(' {"a": 1}', 'x')).to.deep.equal({ a: 1 });
    expect(parsePolicyText('a: 1\nb: [x, 2]\n', 'x')).to.deep.equal({ a: 1, b: ['x', 2] });
    expect(parsePolicyText('# only a comment\n', 'x')).to.equal(null);
  });
});
