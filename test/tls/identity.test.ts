import { expect } from 'chai';
import { identityOf, isAllowed, parseSubjectAltNames, serviceOfIdentity } from '../../lib/tls/identity.ts';

describe('TLS identities', function () {
  it("parses node's subjectaltname text, quoted values included", function () {
    expect(parseSubjectAltNames('DNS:localhost, IP Address:127.0.0.1, URI:spiffe://meshfetch.local/payments')).to.deep.equal({
      uris: ['spiffe://meshfetch.local/payments'],
      dns: ['localhost'],
      ips: ['127.0.0.1'],
    });
    expect(parseSubjectAltNames('URI:"spiffe://td/a,b", DNS:x.example').uris).to.deep.equal(['spiffe://td/a,b']);
    expect(parseSubjectAltNames(undefined)).to.deep.equal({ uris: [], dns: [], ips: [] });
  });

  it('takes the SPIFFE id first, then a DNS name, then the common name', function () {
    expect(identityOf('DNS:a.example, URI:spiffe://td/a', 'x')).to.equal('spiffe://td/a');
    expect(identityOf('DNS:a.example', 'x')).to.equal('a.example');
    expect(identityOf(undefined, 'x')).to.equal('x');
  });

  it('authorizes by service name (the last SPIFFE path segment), full identity or "*"', function () {
    expect(serviceOfIdentity('spiffe://meshfetch.local/ns/default/sa/checkout')).to.equal('checkout');
    expect(isAllowed(['checkout'], 'spiffe://meshfetch.local/checkout')).to.equal(true);
    expect(isAllowed(['checkout'], 'spiffe://meshfetch.local/intruder')).to.equal(false);
    expect(isAllowed(['spiffe://meshfetch.local/checkout'], 'spiffe://other.domain/checkout')).to.equal(false);
    expect(isAllowed(['spiffe://meshfetch.local/checkout'], 'spiffe://meshfetch.local/checkout')).to.equal(true);
    expect(isAllowed(['*'], 'spiffe://meshfetch.local/anyone')).to.equal(true);
    expect(isAllowed([], 'spiffe://meshfetch.local/checkout')).to.equal(false);
  });
});
