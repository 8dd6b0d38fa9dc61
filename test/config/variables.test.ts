import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createMesh } from '../../lib/index.ts';
import { describeUnknownVariable } from '../../lib/config/variables.ts';

const run = promisify(execFile);
const index = fileURLToPath(new URL('../../lib/index.ts', import.meta.url));

describe('unknown MESHFETCH_* variables', () => {
  it('names the closest known variable for a typo', () => {
    expect(describeUnknownVariable('MESHFETCH_LOGLEVEL')).to.equal(
      'MESHFETCH_LOGLEVEL is not a meshfetch variable and is ignored; did you mean MESHFETCH_LOG_LEVEL?',
    );
    expect(describeUnknownVariable('MESHFETCH_SERIVCE')).to.match(/did you mean MESHFETCH_SERVICE\?$/);
    expect(describeUnknownVariable('MESHFETCH_CONTROLPLANE')).to.match(/did you mean MESHFETCH_CONTROL_PLANE\?$/);
  });

  it('says where a policy setting lives when the variable names a policy key', () => {
    expect(describeUnknownVariable('MESHFETCH_TIMEOUT')).to.equal(
      'MESHFETCH_TIMEOUT is not a meshfetch variable and is ignored; timeout is a policy key, set in the policy document (defaults.timeout, or per service), not by a variable',
    );
    expect(describeUnknownVariable('MESHFETCH_PER_TRY_TIMEOUT')).to.match(/perTryTimeout is a policy key/);
  });

  it('lists the known variables when nothing is close', () => {
    expect(describeUnknownVariable('MESHFETCH_FLUX_CAPACITOR')).to.match(/ignored; meshfetch reads MESHFETCH_SERVICE, MESHFETCH_CONTROL_PLANE, /);
  });

  it('warns through the mesh logger, once per variable in a process', () => {
    const warnings: unknown[][] = [];
    const logger = { debug() {}, info() {}, error() {}, warn: (...args: unknown[]) => void warnings.push(args) };
    const env = { MESHFETCH_TLS_CRT: '/x', MESHFETCH_SERVICE: 'checkout', OTHER: 'x' };
    createMesh({ env, logger });
    createMesh({ env, logger });
    expect(warnings).to.deep.equal([['MESHFETCH_TLS_CRT is not a meshfetch variable and is ignored; did you mean MESHFETCH_TLS_CERT?']]);
  });

  it('writes the warning once to stderr in a real process that reads process.env', async () => {
    const script = `import { createMesh } from ${JSON.stringify(index)}; createMesh(); createMesh();`;
    const { stderr } = await run(process.execPath, ['--input-type=module', '-e', script], {
      env: { PATH: process.env.PATH, MESHFETCH_LOGLEVEL: 'debug' },
      timeout: 20_000,
    });
    const lines = stderr.trim().split('\n').map((line) => JSON.parse(line) as { level: string; msg: string });
    expect(lines).to.have.length(1);
    expect(lines[0]).to.include({ level: 'warn', msg: 'MESHFETCH_LOGLEVEL is not a meshfetch variable and is ignored; did you mean MESHFETCH_LOG_LEVEL?' });
  });
});
