import { expect } from 'chai';
import { controlPlaneUrl } from '../../lib/control-plane-client/url.ts';

describe('controlPlaneUrl', () => {
  it('keeps a path prefix of the control plane URL, with or without a trailing slash', () => {
    expect(controlPlaneUrl(new URL('http://gw.internal/cp/'), '/v1/policy').href).to.equal('http://gw.internal/cp/v1/policy');
    expect(controlPlaneUrl(new URL('http://gw.internal/cp'), '/v1/policy/watch').href).to.equal('http://gw.internal/cp/v1/policy/watch');
    expect(controlPlaneUrl(new URL('https://127.0.0.1:7878'), '/v1/clients/report').href).to.equal('https://127.0.0.1:7878/v1/clients/report');
    expect(controlPlaneUrl(new URL('http://cp/?x=1#y'), '/healthz').href).to.equal('http://cp/healthz');
  });
});
