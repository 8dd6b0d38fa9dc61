import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const entry = new URL('../../lib/index.ts', import.meta.url).href;

describe('importing meshfetch', () => {
  it('leaves the global fetch dispatcher to Node (no undici global-dispatcher side effect)', async () => {
    // A fresh process, in which meshfetch is the first to load the undici package.
    const probe = `
      await import(${JSON.stringify(entry)});
      const { Agent } = await import('undici');
      const dispatcher = globalThis[Symbol.for('undici.globalDispatcher.2')];
      console.log(JSON.stringify({ set: dispatcher !== undefined, packageAgent: dispatcher instanceof Agent }));
    `;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', probe], { cwd: new URL('../../', import.meta.url) });
    expect(JSON.parse(stdout)).to.deep.equal({ set: true, packageAgent: false });
  });
});
