import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { links as pageLinks, markdownPages, readPage } from '../helpers/markdown.ts';
import { sendJson, startServer } from '../helpers/server.ts';
import type { TestServer } from '../helpers/server.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  engines: { node: string };
  files: string[];
  dependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  license: string;
  repository: { url: string };
  homepage: string;
  bugs: { url: string };
};

/** A fresh app directory whose node_modules holds this package (as built in dist/) and the few it needs. */
function appDirectory(): string {
  expect(existsSync(join(root, 'dist/index.js')), 'dist/ is built (npm run build)').to.equal(true);
  const dir = mkdtempSync(join(tmpdir(), 'meshfetch-cjs-'));
  mkdirSync(join(dir, 'node_modules/@types'), { recursive: true });
  symlinkSync(root, join(dir, 'node_modules/meshfetch'), 'dir');
  symlinkSync(join(root, 'node_modules/got'), join(dir, 'node_modules/got'), 'dir');
  symlinkSync(join(root, 'node_modules/@types/node'), join(dir, 'node_modules/@types/node'), 'dir');
  // No "type" field: every .js and .ts file of this app is CommonJS.
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'cjs-app', private: true }));
  return dir;
}

/** A CommonJS program that loads both entry points with require() and makes one real call. */
const APP = `
const { createMesh } = require('meshfetch');
const { gotTransport } = require('meshfetch/got');
async function main() {
  for (const transport of [undefined, gotTransport()]) {
    const mesh = createMesh({
      env: {},
      transport,
      policy: { apiVersion: 'meshfetch/v1', services: { payments: { endpoints: [process.env.PAYMENTS] } } },
    });
    const charge = await mesh.client('payments').get('/charges/1');
    console.log(JSON.stringify(charge));
    await mesh.close();
  }
}
main().catch((err) => { console.error(err); process.exitCode = 1; });
`;

/** The same program in TypeScript, compiled with module nodenext as a CommonJS project. */
const TS_APP = `
import { createMesh, HttpStatusError } from 'meshfetch';
import type { Mesh } from 'meshfetch';
import { gotTransport } from 'meshfetch/got';
async function main(): Promise<void> {
  const mesh: Mesh = createMesh({
    env: {},
    transport: gotTransport(),
    policy: { apiVersion: 'meshfetch/v1', services: { payments: { endpoints: [process.env.PAYMENTS!] } } },
  });
  const charge = await mesh.client('payments').get<{ id: string }>('/charges/1');
  console.log(JSON.stringify(charge), typeof HttpStatusError);
  await mesh.close();
}
void main();
`;

describe('the package', () => {
  let server: TestServer;
  const dirs: string[] = [];
  before(async () => {
    server = await startServer((_req, res) => sendJson(res, 200, { id: 'ch_1' }));
  });
  after(async () => {
    await server.close();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it("loads with require('meshfetch') and require('meshfetch/got') from a CommonJS app (needs `npm run build`)", async () => {
    const dir = appDirectory();
    dirs.push(dir);
    writeFileSync(join(dir, 'app.js'), APP);
    const { stdout, stderr } = await run(process.execPath, ['app.js'], { cwd: dir, env: { ...process.env, PAYMENTS: server.origin }, timeout: 20_000 });
    expect(stdout).to.equal('{"id":"ch_1"}\n{"id":"ch_1"}\n');
    // A top-level await anywhere in the graph would fail require() (ERR_REQUIRE_ASYNC_MODULE).
    expect(stderr).to.not.match(/ERR_REQUIRE|Error/);
  });

  it('type-checks for a TypeScript CommonJS project (module nodenext, strict), and its output runs', async function () {
    this.timeout(60_000); // tsc on a loaded 2-core machine
    const dir = appDirectory();
    dirs.push(dir);
    writeFileSync(join(dir, 'app.ts'), TS_APP);
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', strict: true, types: ['node'], outDir: 'out' }, files: ['app.ts'] }),
    );
    await run(join(root, 'node_modules/.bin/tsc'), ['-p', dir], { cwd: dir, timeout: 60_000 });
    const emitted = readFileSync(join(dir, 'out/app.js'), 'utf8');
    expect(emitted).to.match(/require\("meshfetch"\)/);
    const { stdout } = await run(process.execPath, ['out/app.js'], { cwd: dir, env: { ...process.env, PAYMENTS: server.origin }, timeout: 20_000 });
    expect(stdout).to.equal('{"id":"ch_1"} function\n');
  });

  it("requires a Node.js that every dependency accepts (undici 8: >=22.19.0)", () => {
    const minimum = (range: string): number[] => {
      const match = /^>=\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(range.trim());
      expect(match, `engines range "${range}"`).to.not.equal(null);
      return [Number(match![1]), Number(match![2] ?? 0), Number(match![3] ?? 0)];
    };
    const ours = minimum(pkg.engines.node);
    for (const name of [...Object.keys(pkg.dependencies), ...Object.keys(pkg.peerDependencies)]) {
      const theirs = (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { engines?: { node?: string } }).engines?.node;
      if (theirs === undefined || !theirs.startsWith('>=')) continue;
      const needed = minimum(theirs);
      const compare = ours[0]! - needed[0]! || ours[1]! - needed[1]! || ours[2]! - needed[2]!;
      expect(compare, `${name} needs node ${theirs}; package.json says ${pkg.engines.node}`).to.be.at.least(0);
    }
  });

  it('ships an Apache-2.0 LICENSE and says where the project lives', () => {
    expect(pkg.license).to.equal('Apache-2.0');
    expect(pkg.files).to.include('LICENSE');
    const license = readFileSync(join(root, 'LICENSE'), 'utf8');
    expect(license).to.match(/^\s+Apache License\n\s+Version 2\.0, January 2004/);
    expect(license).to.include('END OF TERMS AND CONDITIONS');
    expect(pkg.repository.url).to.match(/^git\+https:\/\/github\.com\//);
    expect(pkg.homepage).to.match(/^https:\/\//);
    expect(pkg.bugs.url).to.match(/^https:\/\//);
  });

  it('every relative link in README.md and docs/ points to a file that is in the package', () => {
    const shipped = (path: string): boolean =>
      path === 'package.json' || pkg.files.some((entry) => path === entry || path.startsWith(`${entry}/`));
    let links = 0;
    for (const page of markdownPages()) {
      for (const target of pageLinks(readPage(page))) {
        if (/^[a-z]+:/i.test(target) || target.startsWith('#')) continue;
        const file = relative(root, resolve(root, dirname(page), target.split('#')[0]!));
        links += 1;
        expect(existsSync(join(root, file)), `${page} links to ${target}, which does not exist`).to.equal(true);
        expect(shipped(file), `${page} links to ${file}, which package.json "files" leaves out`).to.equal(true);
      }
    }
    expect(links).to.be.greaterThan(5);
  });
});
