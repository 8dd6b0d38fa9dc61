import { expect } from 'chai';
import { isMeshError } from '../../lib/errors.ts';
import { parseStoreUrl } from '../../lib/control-plane/store-url.ts';

function refusal(value: string): string {
  try {
    parseStoreUrl(value, '--store');
  } catch (err) {
    if (isMeshError(err)) return `${err.code} ${err.message}`;
    throw err;
  }
  throw new Error(`${value} was accepted`);
}

describe('parseStoreUrl', () => {
  it('reads file:<path> and etcd://host:port[,host:port…]/prefix', () => {
    expect(parseStoreUrl('file:./policy.yaml', '--store')).to.deep.equal({ kind: 'file', path: './policy.yaml' });
    expect(parseStoreUrl('etcd://10.0.0.1:2379,etcd-2.internal:2379,[::1]:2379/prod/meshfetch/', '--store')).to.deep.equal({
      kind: 'etcd',
      hosts: ['http://10.0.0.1:2379', 'http://etcd-2.internal:2379', 'http://[::1]:2379'],
      prefix: 'prod/meshfetch',
    });
  });

  it('refuses anything else with MESHFETCH_CONFIG naming where the value came from and what is wrong', () => {
    expect(refusal('file:')).to.equal('MESHFETCH_CONFIG --store="file:": expected file:<path>');
    expect(refusal('consul://x/y')).to.contain('--store="consul://x/y": expected file:<path> or etcd://host:2379');
    expect(refusal('etcd://127.0.0.1:2379')).to.contain('name a key prefix after the hosts');
    expect(refusal('etcd://127.0.0.1/meshfetch')).to.contain('"127.0.0.1" is not host:port');
    expect(refusal('etcd://127.0.0.1:99999/meshfetch')).to.contain('"127.0.0.1:99999" is not host:port');
    expect(refusal('etcd://127.0.0.1:2379,/meshfetch')).to.contain('"" is not host:port');
    expect(refusal('etcd://127.0.0.1:2379/')).to.contain('the key prefix "" must be path segments');
    expect(refusal('etcd://127.0.0.1:2379/a//b')).to.contain('the key prefix "a//b"');
    expect(refusal(`etcd://127.0.0.1:2379/${'x'.repeat(500)}!`).length).to.be.below(1200);
  });
});
