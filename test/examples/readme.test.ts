import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { compilePolicy } from '../../lib/policy/compile.ts';
import { deadOrigin } from '../helpers/fault-server.ts';
import { sendJson, startServer } from '../helpers/server.ts';
import type { TestHandler } from '../helpers/server.ts';

const run = promisify(execFile);
const root = new URL('../../', import.meta.url);

/** The ```ts block that follows the `<!-- example: FILE -->` marker in the README. */
function readmeExample(file: string): string {
  const readme = readFileSync(new URL('README.md', root), 'utf8');
  const marker = readme.indexOf(`<!-- example: ${file} -->`);
  expect(marker, `README marker for ${file}`).to.be.greaterThan(-1);
  const start = readme.indexOf('```ts\n', marker) + '```ts\n'.length;
  return readme.slice(start, readme.indexOf('```\n', start));
}

/** Runs an example file as a newcomer would (`node FILE`), with `env` added to the environment. */
async function runExample(file: string, env: Record<string, string> = {}): Promise<string[]> {
  const { stdout } = await run(process.execPath, [file], { cwd: root, timeout: 20_000, env: { ...process.env, ...env } });
  return stdout.trimEnd().split('\n');
}

describe('README', () => {
  const file = 'examples/first-call.ts';

  it(`shows ${file} as it is, in about 15 lines`, () => {
    const example = readmeExample(file);
    expect(example).to.equal(readFileSync(new URL(file, root), 'utf8'));
    expect(example.trimEnd().split('\n')).to.have.length.within(12, 16);
  });

  describe(`${file} runs as written against a real payments server, printing what the README says (needs \`npm run build\`)`, () => {
    /** The README's "when payments… | it prints" row for `when`: the lines it shows, in `code`. */
    function readmeSays(when: string): string[] {
      const readme = readFileSync(new URL('README.md', root), 'utf8');
      const row = readme.split('\n').find((line) => line.startsWith(`| ${when} | `));
      expect(row, `README row "${when}"`).to.not.equal(undefined);
      return [...row!.split(' | ')[1]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    }

    /** Runs the example against a loopback server answering with `handler`; returns its output and the paths asked for. */
    async function against(handler: TestHandler): Promise<{ output: string[]; paths: (string | undefined)[] }> {
      const payments = await startServer(handler);
      try {
        const output = await runExample(file, { PAYMENTS_URL: payments.origin });
        return { output, paths: payments.requests.map((req) => req.url) };
      } finally {
        await payments.close();
      }
    }

    it('retries a 503 and prints the charge', async () => {
      let served = 0;
      const { output, paths } = await against((_req, res) => {
        served += 1;
        if (served === 1) sendJson(res, 503, { error: 'warming up' });
        else sendJson(res, 200, { id: 'ch_1', amount: 5 });
      });
      expect(output).to.deep.equal(['retrying payments (attempt 2) after 503', 'charge ch_1: 5']);
      expect(readmeSays('answers 503, then the charge')).to.deep.equal(output);
      expect(paths).to.deep.equal(['/charges/ch_1', '/charges/ch_1']);
    });

    it('prints MESHFETCH_HTTP_STATUS for a 404, which is not retried', async () => {
      const { output, paths } = await against((_req, res) => sendJson(res, 404, { error: 'no such charge' }));
      expect(output).to.deep.equal(['payments failed: MESHFETCH_HTTP_STATUS (attempts: 1)']);
      expect(readmeSays('answers 404')).to.deep.equal(output);
      expect(paths).to.have.length(1);
    });

    it("prints MESHFETCH_TIMEOUT when payments does not answer within the policy's 2s", async () => {
      const { output } = await against(() => {});
      expect(output).to.deep.equal(['payments failed: MESHFETCH_TIMEOUT (attempts: 1)']);
      expect(readmeSays('does not answer')).to.deep.equal(output);
    });

    it('retries a refused connection twice, then prints MESHFETCH_CONNECT', async () => {
      const origin = await deadOrigin();
      const output = await runExample(file, { PAYMENTS_URL: origin });
      const refused = `after MeshError: cannot connect to payments at ${origin}: ECONNREFUSED`;
      expect(output).to.deep.equal([
        `retrying payments (attempt 2) ${refused}`,
        `retrying payments (attempt 3) ${refused}`,
        'payments failed: MESHFETCH_CONNECT (attempts: 3)',
      ]);
      const [retrying, failed] = readmeSays('is not listening');
      expect(retrying).to.equal('retrying payments … ECONNREFUSED');
      expect(failed).to.equal(output[2]);
    });
  });
});

describe('examples/policy.yaml (the README copies it to start a control plane)', () => {
  it('is a valid policy document', () => {
    const policy = compilePolicy(parse(readFileSync(new URL('examples/policy.yaml', root), 'utf8')), 'examples/policy.yaml');
    expect([...policy.services.keys()]).to.deep.equal(['payments', 'orders']);
    expect(readFileSync(new URL('README.md', root), 'utf8')).to.include('cp examples/policy.yaml policy.yaml');
  });
});

describe('examples/quickstart.ts (linked from the README)', () => {
  it('runs as written (needs `npm run build`)', async () => {
    expect(readFileSync(new URL('README.md', root), 'utf8')).to.include('](examples/quickstart.ts)');
    expect(await runExample('examples/quickstart.ts')).to.deep.equal([
      'retrying payments (attempt 2) after 503',
      'charge ch_1: 5',
      "fetch: 200 { id: 'ch_2', amount: 5 }",
      "error: MESHFETCH_HTTP_STATUS 404 { error: 'no such charge' }",
    ]);
  });
});

describe('examples/deadline-propagation.ts', () => {
  it('shows a downstream call ending with its caller across two real hops (needs `npm run build`)', async () => {
    // Both deadlines end within a millisecond of each other, so the lines may come in either order.
    expect((await runExample('examples/deadline-propagation.ts')).sort()).to.deep.equal(
      [
        'inventory: asked to answer within 200 ms or less',
        'edge: MESHFETCH_TIMEOUT',
        'orders: inventory call ended with MESHFETCH_TIMEOUT',
        'inventory: the caller hung up',
      ].sort(),
    );
  });
});
