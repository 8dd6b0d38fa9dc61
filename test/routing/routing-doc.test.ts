import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { compilePolicy } from '../../lib/policy/compile.ts';
import { resolveCall } from '../../lib/policy/resolve.ts';

const doc = readFileSync(new URL('../../docs/routing.md', import.meta.url), 'utf8');
const blocks = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => parse(m[1]!) as unknown);

describe('docs/routing.md', () => {
  it('has an example for every routing key, and each compiles', () => {
    expect(blocks.length).to.be.at.least(5);
    const text = JSON.stringify(blocks);
    for (const key of ['"headers"', '"query"', '"prefix"', '"split"', '"backend"', '"fault"', '"mirror"', '"regex"']) expect(text).to.include(key);
    blocks.forEach((block, i) => expect(() => compilePolicy(block, `docs/routing.md block ${i + 1}`), `block ${i + 1}`).not.to.throw());
  });

  it('the precedence example resolves as the page says', () => {
    const policy = compilePolicy(blocks[0], 'docs');
    const route = (method: string, path: string, headers = {}) => resolveCall(policy, 'payments', undefined, method, path, headers).route;
    expect(route('GET', '/charges/1', { 'x-beta': 'true' })).to.equal('get-charge');
    expect(route('POST', '/charges/1', { 'x-beta': 'true' })).to.equal('beta');
    expect(route('GET', '/beta/x?v=2')).to.equal('beta');
    const fixed = compilePolicy(blocks[1], 'docs');
    expect(resolveCall(fixed, 'payments', undefined, 'GET', '/charges/1', { 'x-beta': 'true' }).route).to.equal('get-charge-beta');
  });

  it('the nested split example flattens as the page says (50/25/25)', () => {
    const policy = compilePolicy(
      {
        apiVersion: 'meshfetch/v1',
        services: {
          a: { endpoints: ['http://10.0.0.1'], split: [{ service: 'a', weight: 1 }, { service: 'b', weight: 1 }] },
          b: { endpoints: ['http://10.0.0.2'], split: [{ service: 'b', weight: 1 }, { service: 'c', weight: 1 }] },
          c: { endpoints: ['http://10.0.0.3'] },
        },
      },
      'docs',
    );
    const split = policy.services.get('a')!.routing.split!;
    expect(split.backends.map((b) => [b.service, b.upTo / split.total])).to.deep.equal([['a', 0.5], ['b', 0.75], ['c', 1]]);
  });
});
