import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compilePolicy, MeshError } from '../../lib/index.ts';
import { loadPolicyFile } from '../../lib/policy/load.ts';

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(MeshError);
    return (err as MeshError).message;
  }
  throw new Error('expected a MESHFETCH_CONFIG error');
}

describe('policy problems: suggestions and lines', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshfetch-lines-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('suggests the key an unknown key is close to, and only when one is close', () => {
    const message = messageOf(() =>
      compilePolicy(
        {
          apiVersion: 'meshfetch/v1',
          defaults: { perTryTimout: '1s', retry: { backof: { base: '1ms' } }, colour: 'red' },
        },
        'test',
      ),
    );
    expect(message.split('\n').slice(1).map((line) => line.trim())).to.have.members([
      'defaults.perTryTimout: unknown key; did you mean "perTryTimeout"?',
      'defaults.retry.backof: unknown key; did you mean "backoff"?',
      'defaults.colour: unknown key',
    ]);
  });

  it('names the line of each problem in a YAML file, also under a service name containing "."', () => {
    const path = join(dir, 'policy.yaml');
    writeFileSync(
      path,
      [
        'apiVersion: meshfetch/v1', // 1
        'services:', // 2
        '  pay.ments:', // 3
        '    endpoints: ["http://127.0.0.1:1"]', // 4
        '    routes:', // 5
        '      - name: charge', // 6
        '        match: { path: /charges }', // 7
        '        timeot: 1s', // 8
        '      - match: { path: /refunds }', // 9
        '  pay:', // 10
        '    retry:', // 11
        '      attempts: 99', // 12
        '',
      ].join('\n'),
    );
    expect(messageOf(() => loadPolicyFile(path)).split('\n').slice(1).map((line) => line.trim())).to.have.members([
      'services.pay.ments.routes[0].timeot: unknown key; did you mean "timeout"? (line 8)',
      'services.pay.ments.routes[1].name: required (line 9)',
      'services.pay.retry.attempts: expected a number from 1 to 10, got 99 (line 12)',
    ]);
  });

  it('names the line in a JSON file too', () => {
    const path = join(dir, 'policy.json');
    writeFileSync(path, '{\n  "apiVersion": "meshfetch/v1",\n  "defaults": {\n    "timeout": "fast"\n  }\n}\n');
    expect(messageOf(() => loadPolicyFile(path))).to.equal(
      `invalid policy from ${path}:\n  defaults.timeout: expected a duration such as "250ms", "10s" or "1m", got "fast" (line 4)`,
    );
  });
});
