import { inspect } from 'node:util';
import { expect } from 'chai';
import { createMesh, ErrorCode, MeshError } from '../../lib/index.ts';
import { MeshEvents } from '../../lib/events.ts';
import type { MeshEventMap } from '../../lib/events.ts';
import { createLogger } from '../../lib/log.ts';
import { createCertificateAuthority } from '../../lib/tls/issue.ts';
import type { CertificateAuthority } from '../../lib/tls/issue.ts';
import { TlsMaterial } from '../../lib/tls/material.ts';
import { CertificateWatcher } from '../../lib/tls/watcher.ts';
import { issueClient } from '../helpers/certs.ts';
import type { KeyPair } from '../helpers/certs.ts';
import { nextCertificateEvent, TlsDir } from '../helpers/tls-files.ts';

const CHECKOUT = 'spiffe://meshfetch.local/checkout';
const DAY = 86_400_000;
const MINUTE = 60_000;

describe('TLS material: validation at createMesh(), expiry, secrets', function () {
  let ca: CertificateAuthority;
  let good: KeyPair;
  const dirs: TlsDir[] = [];

  before(async function () {
    ca = await createCertificateAuthority('mesh CA');
    good = await issueClient(ca, CHECKOUT);
  });

  after(() => dirs.splice(0).forEach((d) => d.remove()));

  function dir(pair: KeyPair, bundle = ca.cert): TlsDir {
    const created = new TlsDir(pair, bundle);
    dirs.push(created);
    return created;
  }

  /** createMesh() with these files must throw MESHFETCH_CONFIG; returns its message. */
  function refusedAtStart(files: TlsDir): string {
    let caught: unknown;
    try {
      void createMesh({ env: {}, logLevel: 'silent', ...files.options }).close();
    } catch (err) {
      caught = err;
    }
    expect(caught, 'createMesh() should have thrown').to.be.instanceOf(MeshError);
    expect((caught as MeshError).code).to.equal(ErrorCode.Config);
    return (caught as MeshError).message;
  }

  it('refuses at createMesh() an expired, a not yet valid, a mismatched, a foreign and a non-CA set, naming the file', async function () {
    const expired = dir(await issueClient(ca, CHECKOUT, { notBefore: new Date(Date.now() - 2 * DAY), notAfter: new Date(Date.now() - DAY) }));
    expect(refusedAtStart(expired)).to.match(new RegExp(`^createMesh option tls.certFile=${expired.cert}: the certificate has expired \\(notAfter `));
    const early = dir(await issueClient(ca, CHECKOUT, { notBefore: new Date(Date.now() + DAY) }));
    expect(refusedAtStart(early)).to.contain(`tls.certFile=${early.cert}: the certificate is not valid yet`);
    const mismatch = dir({ cert: good.cert, key: (await issueClient(ca, CHECKOUT)).key });
    expect(refusedAtStart(mismatch)).to.equal(`createMesh option tls.keyFile=${mismatch.key}: the private key does not match the certificate`);
    const foreign = dir(await issueClient(await createCertificateAuthority('a stranger CA'), CHECKOUT));
    expect(refusedAtStart(foreign)).to.equal(`createMesh option tls.certFile=${foreign.cert}: the certificate was not issued by any CA of the CA bundle`);
    const leafAsCa = dir(good, good.cert);
    expect(refusedAtStart(leafAsCa)).to.equal(`createMesh option tls.caFile=${leafAsCa.ca}: certificate 1 of the CA bundle (CN=meshfetch test client) is not a CA`);
  });

  it('accepts a bundle of two CAs, and refuses two PEM blocks run together on one line', async function () {
    const other = await createCertificateAuthority('next mesh CA');
    expect(new TlsMaterial({ ...good, ca: ca.cert + other.cert }).authorities).to.have.length(2);
    expect(() => new TlsMaterial({ ...good, ca: ca.cert.trimEnd() + other.cert })).to.throw(/incomplete or non-certificate PEM block/);
  });

  it('never shows the private key when printed or serialized', function () {
    const material = new TlsMaterial({ ...good, ca: ca.cert });
    const keyBody = good.key.split('\n')[1]!;
    for (const shown of [inspect(material), JSON.stringify(material), String(material)]) {
      expect(shown).to.not.contain(keyBody);
      expect(shown).to.not.contain('PRIVATE KEY');
    }
    expect(inspect(material)).to.contain(CHECKOUT);
  });

  it('announces loaded, then expiring at 70% of the lifetime and expired after notAfter, once each, with a logged warning', async function () {
    const now = Date.now();
    const files = dir(await issueClient(ca, CHECKOUT, { notBefore: new Date(now - MINUTE), notAfter: new Date(now + 9 * MINUTE) }));
    const lines: string[] = [];
    const events = new MeshEvents();
    const seen: MeshEventMap['certificate'][] = [];
    events.on('certificate', (e) => seen.push(e));
    const watcher = new CertificateWatcher(
      { cert: { path: files.cert, where: 'MESHFETCH_TLS_CERT' }, key: { path: files.key, where: 'MESHFETCH_TLS_KEY' }, ca: { path: files.ca, where: 'MESHFETCH_TLS_CA' } },
      { events, logger: createLogger('info', (line) => lines.push(line)) },
    );
    try {
      await nextCertificateEvent(events, 'loaded');
      expect(watcher.status(now)).to.include({ state: 'valid', subject: CHECKOUT });
      watcher.checkExpiry(now + 6 * MINUTE); // 40% left
      watcher.checkExpiry(now + 7.5 * MINUTE); // 15% left
      watcher.checkExpiry(now + 8 * MINUTE);
      watcher.checkExpiry(now + 10 * MINUTE);
      watcher.checkExpiry(now + 11 * MINUTE);
      expect(seen.map((e) => e.state)).to.deep.equal(['loaded', 'expiring', 'expired']);
      expect(seen[1]!.reason).to.match(/^the certificate expires at /);
      expect(seen[2]!.reason).to.match(/^the certificate expired at /);
      const later = now + 10 * MINUTE;
      expect(watcher.status(later)).to.include({ state: 'expired', expiresInSeconds: Math.floor((seen[0]!.notAfter! - later) / 1000) });
      expect(watcher.status(later).expiresInSeconds).to.be.within(-61, -60);
      const logged = lines.map((l) => JSON.parse(l) as { level: string; msg: string });
      expect(logged.map((l) => l.level)).to.deep.equal(['info', 'warn', 'error']);
      expect(lines.join('')).to.not.contain('PRIVATE KEY');
    } finally {
      watcher.close();
    }
  });

  it('livePems() reads the material in force at each access, and prints no key', async function () {
    const files = dir(good);
    const events = new MeshEvents();
    const watcher = new CertificateWatcher(
      { cert: { path: files.cert, where: 'c' }, key: { path: files.key, where: 'k' }, ca: { path: files.ca, where: 'a' } },
      { events, logger: createLogger('silent') },
    );
    try {
      const live = watcher.livePems();
      expect(live.cert).to.equal(good.cert);
      const next = await issueClient(ca, CHECKOUT);
      const rotated = nextCertificateEvent(events, 'rotated');
      files.write(next);
      await rotated;
      expect([live.cert, live.key, live.ca]).to.deep.equal([next.cert, next.key, ca.cert]);
      expect(inspect(live)).to.not.contain('PRIVATE KEY');
    } finally {
      watcher.close();
    }
  });

  it('logs a refused file once, with the reason, and keeps the material in force', async function () {
    const files = dir(good);
    const lines: string[] = [];
    const events = new MeshEvents();
    const watcher = new CertificateWatcher(
      { cert: { path: files.cert, where: 'c' }, key: { path: files.key, where: 'k' }, ca: { path: files.ca, where: 'a' } },
      { events, logger: createLogger('error', (line) => lines.push(line)) },
    );
    try {
      const refused = nextCertificateEvent(events, 'refused');
      files.overwrite(files.cert, 'half a certificate');
      await refused;
      watcher.reload(); // the recheck reads the same bad file again: no second report
      expect(lines).to.have.length(1);
      expect(JSON.parse(lines[0]!)).to.include({
        level: 'error',
        msg: `new TLS material refused, the current material stays in use: ${files.cert}: not a PEM file (no "-----BEGIN" line)`,
        subject: CHECKOUT,
      });
      expect(watcher.current.cert).to.equal(good.cert);
    } finally {
      watcher.close();
    }
  });
});
