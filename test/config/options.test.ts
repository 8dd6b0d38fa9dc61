import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { inspect } from 'node:util';
import { createMesh, ErrorCode, MeshError } from '../../lib/index.ts';
import type { Mesh, MeshOptions } from '../../lib/index.ts';
import { generateCerts } from '../helpers/certs.ts';
import type { TestCerts } from '../helpers/certs.ts';

const INDEX = fileURLToPath(new URL('../../lib/index.ts', import.meta.url));


/** createMesh() must throw MESHFETCH_CONFIG; returns the error. */
function configFailure(options: MeshOptions): MeshError {
  let caught: unknown;
  let mesh: Mesh | undefined;
  try {
    mesh = createMesh(options);
  } catch (err) {
    caught = err;
  }
  if (mesh) void mesh.close();
  expect(caught, 'createMesh() should have thrown').to.be.instanceOf(MeshError);
  expect((caught as MeshError).code).to.equal(ErrorCode.Config);
  return caught as MeshError;
}

describe('createMesh() options and environment variables', () => {
  let dir: string;
  let certs: TestCerts;
  const paths = {} as Record<'cert' | 'key' | 'ca' | 'notPem' | 'policy' | 'badPolicy' | 'cacheDir' | 'aFile', string>;
  const meshes: Mesh[] = [];
  /** createMesh(), closed after the test. */
  const mesh = (options: MeshOptions): Mesh => {
    const created = createMesh(options);
    meshes.push(created);
    return created;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshfetch-options-'));
    certs = await generateCerts();
    const file = (name: string, text: string): string => {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    };
    paths.cert = file('client.crt', certs.client.cert);
    paths.key = file('client.key', certs.client.key);
    paths.ca = file('ca.crt', certs.ca);
    paths.notPem = file('not-pem.txt', 'this is not a certificate\n');
    paths.policy = file('policy.yaml', 'apiVersion: meshfetch/v1\nrevision: from-file\nservices:\n  payments:\n    baseUrl: http://127.0.0.1:1\n');
    paths.badPolicy = file('bad-policy.yaml', 'apiVersion: meshfetch/v1\nservices:\n  payments:\n    retry: { atempts: 2 }\n');
    paths.aFile = file('plain-file', 'x');
    paths.cacheDir = join(dir, 'cache');
    mkdirSync(paths.cacheDir);
  });

  afterEach(async () => {
    await Promise.all(meshes.splice(0).map((m) => m.close()));
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  describe('with nothing set', () => {
    it('uses the defaults', () => {
      const { settings } = mesh({ env: {} });
      expect({ ...settings, adminToken: settings.adminToken }).to.deep.equal({
        service: 'unknown_service:node',
        controlPlane: undefined,
        controlPlanes: [],
        policyFile: undefined,
        tls: {},
        cacheDir: undefined,
        adminToken: undefined,
        logLevel: 'warn',
        reportInterval: 10_000,
      });
      expect(mesh({ env: {} }).policyRevision).to.equal(undefined);
    });

    it('treats empty and blank variables as unset', () => {
      const { settings } = mesh({
        env: {
          MESHFETCH_SERVICE: '',
          OTEL_SERVICE_NAME: '   ',
          MESHFETCH_CONTROL_PLANE: ' ',
          MESHFETCH_POLICY: '',
          MESHFETCH_TLS_CERT: '',
          MESHFETCH_TLS_KEY: '',
          MESHFETCH_TLS_CA: '',
          MESHFETCH_CACHE_DIR: '',
          MESHFETCH_ADMIN_TOKEN: '',
          MESHFETCH_LOG_LEVEL: '',
        },
      });
      expect(settings.service).to.equal('unknown_service:node');
      expect(settings.controlPlane).to.equal(undefined);
      expect(settings.policyFile).to.equal(undefined);
      expect(settings.adminToken).to.equal(undefined);
      expect(settings.logLevel).to.equal('warn');
    });

    it('reads process.env when no env option is given', () => {
      const saved = process.env.MESHFETCH_SERVICE;
      process.env.MESHFETCH_SERVICE = 'from-process-env';
      try {
        expect(mesh({}).service).to.equal('from-process-env');
      } finally {
        if (saved === undefined) delete process.env.MESHFETCH_SERVICE;
        else process.env.MESHFETCH_SERVICE = saved;
      }
    });
  });

  describe('MESHFETCH_SERVICE and OTEL_SERVICE_NAME', () => {
    it('names the service from MESHFETCH_SERVICE, trimmed', () => {
      expect(mesh({ env: { MESHFETCH_SERVICE: ' checkout ', OTEL_SERVICE_NAME: 'otel-name' } }).service).to.equal('checkout');
      expect(mesh({ env: { MESHFETCH_SERVICE: 'api.v2_payments-eu:blue' } }).service).to.equal('api.v2_payments-eu:blue');
    });

    it('falls back to OTEL_SERVICE_NAME, then to unknown_service:node', () => {
      expect(mesh({ env: { OTEL_SERVICE_NAME: 'otel-name' } }).service).to.equal('otel-name');
      expect(mesh({ env: { OTEL_SERVICE_NAME: '' } }).service).to.equal('unknown_service:node');
      expect(mesh({ env: {} }).service).to.equal('unknown_service:node');
    });

    it('lets the service option override both', () => {
      expect(mesh({ service: 'option-name', env: { MESHFETCH_SERVICE: 'env-name', OTEL_SERVICE_NAME: 'otel' } }).service).to.equal('option-name');
    });

    it('rejects a bad name, naming the variable and the value', () => {
      expect(configFailure({ env: { MESHFETCH_SERVICE: 'check out' } }).message).to.equal(
        'MESHFETCH_SERVICE="check out": a service name is letters, digits, ".", "_", ":" or "-"',
      );
      expect(configFailure({ env: { MESHFETCH_SERVICE: '-leading-dash' } }).message).to.contain('MESHFETCH_SERVICE="-leading-dash"');
      expect(configFailure({ env: { MESHFETCH_SERVICE: 'x'.repeat(254) } }).message).to.contain(`MESHFETCH_SERVICE="${'x'.repeat(254)}"`);
    });

    it('rejects a bad OTEL_SERVICE_NAME it falls back to, naming it', () => {
      expect(configFailure({ env: { OTEL_SERVICE_NAME: 'my service' } }).message).to.contain('OTEL_SERVICE_NAME="my service"');
    });

    it('rejects a bad service option, naming the option', () => {
      expect(configFailure({ service: 'a/b', env: {} }).message).to.contain('createMesh option service="a/b"');
      expect(configFailure({ service: '', env: { OTEL_SERVICE_NAME: 'fine' } }).message).to.contain('createMesh option service=""');
    });
  });

  describe('MESHFETCH_CONTROL_PLANE', () => {
    it('accepts an http:// or https:// URL', () => {
      const quiet = { MESHFETCH_LOG_LEVEL: 'error' };
      expect(mesh({ env: { ...quiet, MESHFETCH_CONTROL_PLANE: 'https://config.internal:7443/' } }).settings.controlPlane?.href).to.equal('https://config.internal:7443/');
      expect(mesh({ env: { ...quiet, MESHFETCH_CONTROL_PLANE: 'http://127.0.0.1:7000' } }).settings.controlPlane?.origin).to.equal('http://127.0.0.1:7000');
    });

    it('rejects anything else, naming the variable and the value', () => {
      for (const value of ['config.internal:7000', 'not a url', 'ftp://config.internal']) {
        expect(configFailure({ env: { MESHFETCH_CONTROL_PLANE: value } }).message).to.equal(
          `MESHFETCH_CONTROL_PLANE=${JSON.stringify(value)}: expected an http:// or https:// URL`,
        );
      }
    });

    it('accepts several replicas, comma-separated, in order; all http or all https', () => {
      const quiet = { MESHFETCH_LOG_LEVEL: 'error' };
      const { settings } = mesh({ env: { ...quiet, MESHFETCH_CONTROL_PLANE: 'http://cp-a:7878, http://cp-b:7878/base/,http://cp-c:7878' } });
      expect(settings.controlPlanes.map((url) => url.href)).to.deep.equal(['http://cp-a:7878/', 'http://cp-b:7878/base/', 'http://cp-c:7878/']);
      expect(settings.controlPlane?.href).to.equal('http://cp-a:7878/');
      expect(inspect(settings)).to.contain("controlPlane: URL {\n    href: 'http://cp-a:7878/'"); // printed as the URL, not [Getter]
      expect(configFailure({ env: { MESHFETCH_CONTROL_PLANE: 'http://cp-a:7878,cp-b:7878' } }).message).to.equal(
        'MESHFETCH_CONTROL_PLANE="http://cp-a:7878,cp-b:7878": expected an http:// or https:// URL (or several, comma-separated)',
      );
      expect(configFailure({ env: { MESHFETCH_CONTROL_PLANE: 'http://cp-a:7878,https://cp-b:7443' } }).message).to.contain('the replicas must all use http:// or all https://');
      expect(configFailure({ env: { MESHFETCH_CONTROL_PLANE: 'http://cp-a:7878,https://ops:pw@cp-b:7443' } }).message).to.not.contain('pw');
    });

    it('lets the controlPlane option override it', () => {
      const { settings } = mesh({ controlPlane: 'http://option:1', logLevel: 'error', env: { MESHFETCH_CONTROL_PLANE: 'bad' } });
      expect(settings.controlPlane?.href).to.equal('http://option:1/');
      expect(configFailure({ controlPlane: 'nope', env: {} }).message).to.contain('createMesh option controlPlane="nope"');
    });
  });

  describe('MESHFETCH_POLICY', () => {
    it('loads the policy file at once', () => {
      const created = mesh({ env: { MESHFETCH_POLICY: paths.policy } });
      expect(created.settings.policyFile).to.equal(paths.policy);
      expect(created.policyRevision).to.equal('from-file');
    });

    it('rejects a file that does not exist, naming the variable and the path', () => {
      const missing = join(dir, 'missing.yaml');
      expect(configFailure({ env: { MESHFETCH_POLICY: missing } }).message).to.equal(`MESHFETCH_POLICY=${missing}: no such file`);
    });

    it('rejects a bad policy, naming the policy path and the bad key', () => {
      const error = configFailure({ env: { MESHFETCH_POLICY: paths.badPolicy } });
      expect(error.message).to.equal(`invalid policy from ${paths.badPolicy}:\n  services.payments.retry.atempts: unknown key; did you mean "attempts"? (line 4)`);
    });

    it('rejects a path that is not a readable file, naming it', () => {
      expect(configFailure({ env: { MESHFETCH_POLICY: paths.cacheDir } }).message).to.equal(`cannot read policy file ${paths.cacheDir}: EISDIR`);
    });

    it('lets the policyFile option override it', () => {
      const created = mesh({ policyFile: paths.policy, env: { MESHFETCH_POLICY: paths.badPolicy } });
      expect(created.policyRevision).to.equal('from-file');
      const missing = join(dir, 'nope.yaml');
      expect(configFailure({ policyFile: missing, env: {} }).message).to.equal(`createMesh option policyFile=${missing}: no such file`);
    });

    it('is overridden by an inline policy option, which is validated too', () => {
      const created = mesh({ policy: { apiVersion: 'meshfetch/v1', revision: 'inline' }, env: { MESHFETCH_POLICY: paths.badPolicy } });
      expect(created.policyRevision).to.equal('inline');
      const error = configFailure({ policy: { apiVersion: 'meshfetch/v1', defaults: { timeout: 'soon' as '1s' } }, env: {} });
      expect(error.message).to.equal('invalid policy from createMesh option policy:\n  defaults.timeout: expected a duration such as "250ms", "10s" or "1m", got "soon"');
    });
  });

  describe('MESHFETCH_TLS_CERT, MESHFETCH_TLS_KEY, MESHFETCH_TLS_CA', () => {
    it('reads the PEM files', () => {
      const created = mesh({ env: { MESHFETCH_TLS_CERT: paths.cert, MESHFETCH_TLS_KEY: paths.key, MESHFETCH_TLS_CA: paths.ca } });
      expect(created.settings.tls).to.deep.equal({
        cert: { path: paths.cert, where: 'MESHFETCH_TLS_CERT' },
        key: { path: paths.key, where: 'MESHFETCH_TLS_KEY' },
        ca: { path: paths.ca, where: 'MESHFETCH_TLS_CA' },
      });
      expect(created.certificate()).to.include({ state: 'valid', subject: 'meshfetch test client' });
    });

    it('accepts a CA bundle alone', () => {
      const created = mesh({ env: { MESHFETCH_TLS_CA: paths.ca } });
      expect(created.settings.tls).to.deep.equal({ ca: { path: paths.ca, where: 'MESHFETCH_TLS_CA' } });
      expect(created.certificate()).to.include({ state: 'valid', subject: undefined });
    });

    it('rejects a certificate without a key, and a key without a certificate, naming both variables', () => {
      expect(configFailure({ env: { MESHFETCH_TLS_CERT: paths.cert } }).message).to.equal(
        'MESHFETCH_TLS_KEY: must be set together with MESHFETCH_TLS_CERT',
      );
      expect(configFailure({ env: { MESHFETCH_TLS_KEY: paths.key } }).message).to.equal(
        'MESHFETCH_TLS_CERT: must be set together with MESHFETCH_TLS_KEY',
      );
    });

    it('rejects a file that is not PEM, naming the variable and the path', () => {
      expect(configFailure({ env: { MESHFETCH_TLS_CA: paths.notPem } }).message).to.equal(
        `MESHFETCH_TLS_CA=${paths.notPem}: not a PEM file (no "-----BEGIN" line)`,
      );
      expect(configFailure({ env: { MESHFETCH_TLS_CERT: paths.notPem, MESHFETCH_TLS_KEY: paths.key } }).message).to.equal(
        `MESHFETCH_TLS_CERT=${paths.notPem}: not a PEM file (no "-----BEGIN" line)`,
      );
      expect(configFailure({ env: { MESHFETCH_TLS_CERT: paths.cert, MESHFETCH_TLS_KEY: paths.notPem } }).message).to.equal(
        `MESHFETCH_TLS_KEY=${paths.notPem}: not a PEM file (no "-----BEGIN" line)`,
      );
    });

    it('rejects a file that cannot be read, naming the variable, the path and the reason', () => {
      const missing = join(dir, 'missing.pem');
      const error = configFailure({ env: { MESHFETCH_TLS_CA: missing } });
      expect(error.message).to.equal(`MESHFETCH_TLS_CA=${missing}: cannot read the CA bundle: ENOENT`);
      expect((error.cause as NodeJS.ErrnoException).code).to.equal('ENOENT');
    });

    it('lets the tls options override the variables one by one', () => {
      const { settings } = mesh({
        tls: { certFile: paths.cert, caFile: paths.ca },
        env: { MESHFETCH_TLS_CERT: paths.notPem, MESHFETCH_TLS_KEY: paths.key, MESHFETCH_TLS_CA: paths.notPem },
      });
      expect(settings.tls).to.deep.equal({
        cert: { path: paths.cert, where: 'createMesh option tls.certFile' },
        key: { path: paths.key, where: 'MESHFETCH_TLS_KEY' },
        ca: { path: paths.ca, where: 'createMesh option tls.caFile' },
      });
      expect(configFailure({ tls: { certFile: paths.cert }, env: {} }).message).to.equal(
        'MESHFETCH_TLS_KEY: must be set together with createMesh option tls.certFile',
      );
      expect(configFailure({ tls: { caFile: paths.notPem }, env: {} }).message).to.contain(`createMesh option tls.caFile=${paths.notPem}`);
    });
  });

  describe('MESHFETCH_CACHE_DIR', () => {
    it('accepts a directory, or a path that does not exist yet', () => {
      expect(mesh({ env: { MESHFETCH_CACHE_DIR: paths.cacheDir } }).settings.cacheDir).to.equal(paths.cacheDir);
      const later = join(dir, 'created-later');
      expect(mesh({ env: { MESHFETCH_CACHE_DIR: later } }).settings.cacheDir).to.equal(later);
    });

    it('rejects a path that is a file, naming the variable and the path', () => {
      expect(configFailure({ env: { MESHFETCH_CACHE_DIR: paths.aFile } }).message).to.equal(
        `MESHFETCH_CACHE_DIR=${paths.aFile}: exists and is not a directory`,
      );
    });

    it('lets the cacheDir option override it', () => {
      expect(mesh({ cacheDir: paths.cacheDir, env: { MESHFETCH_CACHE_DIR: paths.aFile } }).settings.cacheDir).to.equal(paths.cacheDir);
      expect(configFailure({ cacheDir: paths.aFile, env: {} }).message).to.contain(`createMesh option cacheDir=${paths.aFile}`);
    });
  });

  describe('MESHFETCH_ADMIN_TOKEN', () => {
    it('accepts a token of at least 16 characters', () => {
      expect(mesh({ env: { MESHFETCH_ADMIN_TOKEN: 'a'.repeat(16) } }).settings.adminToken).to.equal('a'.repeat(16));
    });

    it('rejects a short token, naming the variable but never the value', () => {
      const secret = 's3cr3t-t0ken';
      const error = configFailure({ env: { MESHFETCH_ADMIN_TOKEN: secret } });
      expect(error.message).to.equal('MESHFETCH_ADMIN_TOKEN: must be at least 16 characters (value not shown)');
      expect(String(error.stack)).to.not.contain(secret);
      expect(JSON.stringify(error)).to.not.contain(secret);
      expect(error.cause).to.equal(undefined);
    });

    it('lets the adminToken option override it, and hides the option value too', () => {
      expect(mesh({ adminToken: 'b'.repeat(20), env: { MESHFETCH_ADMIN_TOKEN: 'short' } }).settings.adminToken).to.equal('b'.repeat(20));
      const error = configFailure({ adminToken: 'tiny-secret', env: {} });
      expect(error.message).to.equal('createMesh option adminToken: must be at least 16 characters (value not shown)');
      expect(String(error.stack)).to.not.contain('tiny-secret');
    });
  });

  describe('MESHFETCH_LOG_LEVEL', () => {
    it('accepts each level, in any case', () => {
      for (const level of ['debug', 'info', 'warn', 'error', 'silent']) {
        expect(mesh({ env: { MESHFETCH_LOG_LEVEL: level } }).settings.logLevel).to.equal(level);
        expect(mesh({ env: { MESHFETCH_LOG_LEVEL: ` ${level.toUpperCase()} ` } }).settings.logLevel).to.equal(level);
      }
    });

    it('rejects anything else, naming the variable and the value', () => {
      expect(configFailure({ env: { MESHFETCH_LOG_LEVEL: 'verbose' } }).message).to.equal(
        'MESHFETCH_LOG_LEVEL="verbose": expected one of debug, info, warn, error, silent',
      );
    });

    it('lets the logLevel option override it', () => {
      expect(mesh({ logLevel: 'error', env: { MESHFETCH_LOG_LEVEL: 'loud' } }).settings.logLevel).to.equal('error');
      expect(configFailure({ logLevel: 'trace' as 'debug', env: {} }).message).to.contain('createMesh option logLevel="trace"');
    });
  });

  describe('MESHFETCH_REPORT_INTERVAL', () => {
    it('reads a duration, or off', () => {
      expect(mesh({ env: { MESHFETCH_REPORT_INTERVAL: '30s' } }).settings.reportInterval).to.equal(30_000);
      expect(mesh({ env: { MESHFETCH_REPORT_INTERVAL: ' OFF ' } }).settings.reportInterval).to.equal(undefined);
      expect(mesh({ reportInterval: '250ms', env: { MESHFETCH_REPORT_INTERVAL: 'off' } }).settings.reportInterval).to.equal(250);
    });

    it('rejects anything else, and intervals under 100ms, naming the variable and the value', () => {
      expect(configFailure({ env: { MESHFETCH_REPORT_INTERVAL: 'often' } }).message).to.equal(
        'MESHFETCH_REPORT_INTERVAL="often": expected a duration from 100ms (e.g. "10s") or "off"',
      );
      expect(configFailure({ env: { MESHFETCH_REPORT_INTERVAL: '10ms' } }).message).to.contain('MESHFETCH_REPORT_INTERVAL="10ms"');
    });
  });

  describe('in a real process', () => {
    /** Runs `code` as an ES module in a fresh Node process with `env` on top of a clean environment. */
    async function run(code: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
      const clean = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(MESHFETCH_|OTEL_)/.test(name)));
      const child = spawn(process.execPath, ['--input-type=module', '-e', code], { env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const [exitCode] = (await once(child, 'close')) as [number | null];
      return { code: exitCode, stdout, stderr };
    }
    const program = `import { createMesh } from ${JSON.stringify(pathToFileURL(INDEX).href)};
const mesh = createMesh();
console.log(mesh.service, mesh.settings.logLevel);`;

    it('fails createMesh() on a bad MESHFETCH_LOG_LEVEL in the real environment, naming it', async function () {
      this.timeout(30_000);
      const result = await run(program, { MESHFETCH_LOG_LEVEL: 'chatty' });
      expect(result.code).to.equal(1);
      expect(result.stdout).to.equal('');
      expect(result.stderr).to.contain('MeshError: MESHFETCH_LOG_LEVEL="chatty": expected one of debug, info, warn, error, silent');
      expect(result.stderr).to.contain("code: 'MESHFETCH_CONFIG'");
    });

    it('never prints the admin token, the TLS key or a control plane password: inspect, console.log, JSON, logs, errors', async function () {
      this.timeout(30_000);
      const token = 'admin-token-0123456789-secret';
      const printing = `import { inspect } from 'node:util';
import { createMesh } from ${JSON.stringify(pathToFileURL(INDEX).href)};
const mesh = createMesh();
console.log(mesh);
console.log(mesh.settings);
console.log(mesh.settings.tls);
console.log(inspect(mesh, { showHidden: true, depth: Infinity }));
console.log(JSON.stringify(mesh.settings));
console.log(JSON.stringify({ ...mesh.settings, tls: { ...mesh.settings.tls } }));
mesh.setPolicy({ apiVersion: 'meshfetch/v1', revision: 'r2' });
// The secrets are still there for the code that needs them (the key inside the mesh's TLS material).
console.log(mesh.settings.adminToken === process.env.MESHFETCH_ADMIN_TOKEN, mesh.certificate().state === 'valid');
console.log(mesh.certificate());
await mesh.close();
try {
  createMesh({ controlPlane: 'https://ops:hunter2-password@cp.internal:8443/' });
} catch (err) {
  console.log(err.code, err.message);
  console.error(err);
}
try {
  createMesh({ controlPlane: 'ftp://ops:hunter2-password@cp.internal/' });
} catch (err) {
  console.log(err.code, err.message);
}`;
      const result = await run(printing, {
        MESHFETCH_ADMIN_TOKEN: token,
        MESHFETCH_TLS_CERT: paths.cert,
        MESHFETCH_TLS_KEY: paths.key,
        MESHFETCH_CONTROL_PLANE: 'https://cp.internal:8443',
        MESHFETCH_LOG_LEVEL: 'debug',
      });
      expect(result.code, result.stderr).to.equal(0);
      const printed = result.stdout + result.stderr;
      expect(printed).to.contain('unknown_service:node'); // the settings were printed
      expect(printed).to.contain('policy installed'); // and the logs written
      expect(printed).to.contain('true true');
      const keyBody = certs.client.key.split('\n')[1]!;
      for (const secret of [token, keyBody, 'PRIVATE KEY', 'hunter2-password']) expect(printed, secret).to.not.contain(secret);
      expect(result.stdout).to.contain(
        'MESHFETCH_CONFIG createMesh option controlPlane="https://***@cp.internal:8443/": credentials in the URL are not supported; the admin token is MESHFETCH_ADMIN_TOKEN',
      );
      expect(result.stdout).to.contain('MESHFETCH_CONFIG createMesh option controlPlane="ftp://***@cp.internal/": expected an http:// or https:// URL');
    });

    it('starts, and exits by itself, with good values', async function () {
      this.timeout(30_000);
      const result = await run(program, { MESHFETCH_LOG_LEVEL: 'info', OTEL_SERVICE_NAME: 'child-service' });
      expect(result.stderr).to.equal('');
      expect(result.stdout).to.equal('child-service info\n');
      expect(result.code).to.equal(0);
    });
  });
});
