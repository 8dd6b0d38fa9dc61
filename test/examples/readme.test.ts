import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';

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

describe('README', () => {
  it('links every page under docs/', () => {
    const readme = readFileSync(new URL('README.md', root), 'utf8');
    const pages = readdirSync(new URL('docs/', root)).filter((file) => file.endsWith('.md'));
    expect(pages.length).to.be.greaterThan(0);
    expect(pages.filter((page) => !readme.includes(`](docs/${page})`))).to.deep.equal([]);
  });

  it('shows examples/quickstart.ts as it is, and it runs as written (needs `npm run build`)', async () => {
    const file = 'examples/quickstart.ts';
    expect(readmeExample(file)).to.equal(readFileSync(new URL(file, root), 'utf8'));
    const { stdout } = await run(process.execPath, [file], { cwd: root, timeout: 20_000 });
    expect(stdout).to.equal(
      [
        'retrying payments (attempt 2) after 503',
        'charge ch_1: 5',
        "fetch: 200 { id: 'ch_2', amount: 5 }",
        "error: MESHFETCH_HTTP_STATUS 404 { error: 'no such charge' }",
        '',
      ].join('\n'),
    );
  });
});

describe('examples/deadline-propagation.ts', () => {
  it('shows a downstream call ending with its caller across two real hops (needs `npm run build`)', async () => {
    const { stdout } = await run(process.execPath, ['examples/deadline-propagation.ts'], { cwd: root, timeout: 20_000 });
    // Both deadlines end within a millisecond of each other, so the lines may come in either order.
    expect(stdout.trim().split('\n').sort()).to.deep.equal(
      [
        'inventory: asked to answer within 200 ms or less',
        'edge: MESHFETCH_TIMEOUT',
        'orders: inventory call ended with MESHFETCH_TIMEOUT',
        'inventory: the caller hung up',
      ].sort(),
    );
  });
});
