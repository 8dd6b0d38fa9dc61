import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { OtlpReceiver, SPAN_KIND } from '../helpers/otlp-receiver.ts';
import type { ReceivedSpan } from '../helpers/otlp-receiver.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

interface Child {
  readonly process: ChildProcess;
  stdout: string;
  stderr: string;
  readonly exited: Promise<number | null>;
}

/** A real node process, its OTEL_* environment pointed at the test's receiver. Needs `npm run build` (meshfetch resolves to dist/). */
function node(args: string[], env: Record<string, string>): Child {
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_METRICS_EXPORTER: 'otlp',
      OTEL_LOGS_EXPORTER: 'none',
      OTEL_NODE_RESOURCE_DETECTORS: 'env,host,process',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const result: Child = {
    process: child,
    stdout: '',
    stderr: '',
    exited: once(child, 'exit').then(([code]) => code as number | null),
  };
  child.stdout!.on('data', (chunk: Buffer) => (result.stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (result.stderr += chunk.toString()));
  return result;
}

/** Resolves with B's port once it has printed it. */
async function portOf(child: Child): Promise<number> {
  while (!child.stdout.includes('\n')) {
    const [exited] = await Promise.race([once(child.process.stdout!, 'data'), child.exited.then((code) => [`exit ${code}`])]);
    if (typeof exited === 'string') throw new Error(`service B ended before listening (${exited}): ${child.stderr}`);
  }
  return (JSON.parse(child.stdout.split('\n')[0]!) as { port: number }).port;
}

describe('traces across two real services, exported over OTLP/HTTP to a local receiver', function () {
  this.timeout(30_000);
  let receiver: OtlpReceiver;
  const children: Child[] = [];
  beforeEach(async () => {
    receiver = new OtlpReceiver();
  });
  afterEach(async () => {
    for (const child of children.splice(0)) {
      if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
      await child.exited;
    }
    await receiver.close();
  });

  /** Runs B (node:http + instrumentation-http), then A against it with `aArgs`; returns every span received. */
  async function run(aArgs: string[], aEnv: Record<string, string> = {}): Promise<ReceivedSpan[]> {
    const endpoint = await receiver.start();
    const b = node(['--import', 'meshfetch/register', '--import', fixture('instrument-http.ts'), fixture('service-b.ts')], {
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_SERVICE_NAME: 'service-b',
    });
    children.push(b);
    const port = await portOf(b);
    const a = node([...aArgs, fixture('service-a.ts')], {
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_SERVICE_NAME: 'service-a',
      B_ORIGIN: `http://127.0.0.1:${port}`,
      ...aEnv,
    });
    children.push(a);
    expect(await a.exited, a.stderr).to.equal(0); // A exits by itself, having flushed its spans
    b.process.kill('SIGTERM');
    await b.exited;
    return receiver.spans;
  }

  function expectChildOfAttempts(spans: ReceivedSpan[]): void {
    const ours = spans.filter((s) => s.service === 'service-a' && s.scope === 'meshfetch');
    const attempts = ours.filter((s) => s.kind === SPAN_KIND.client);
    const calls = ours.filter((s) => s.kind === SPAN_KIND.internal);
    const controls = new Set(spans.filter((s) => s.service === 'service-a' && s.scope !== 'meshfetch').map((s) => s.spanId));
    const serverSpans = spans.filter((s) => s.service === 'service-b' && s.kind === SPAN_KIND.server && !controls.has(s.parentSpanId ?? ''));
    // One CLIENT span per attempt: meshfetch's (an instrumentation's span in A would be a control call, checked by the caller).
    expect(attempts.map((s) => [s.scope, s.name])).to.deep.equal([
      ['meshfetch', 'GET get-thing'],
      ['meshfetch', 'GET get-thing'],
    ]);
    expect(calls.map((s) => s.name)).to.deep.equal(['GET get-thing', 'GET get-thing']);
    expect(serverSpans).to.have.length(2);
    for (const server of serverSpans) {
      expect(server.scope).to.equal('@opentelemetry/instrumentation-http');
      const parent = attempts.find((a) => a.spanId === server.parentSpanId);
      expect(parent, `B's server span ${server.name} is the child of one of A's attempt spans`).not.to.equal(undefined);
      expect(server.traceId).to.equal(parent!.traceId);
      const call = calls.find((c) => c.spanId === parent!.parentSpanId);
      expect(call, 'the attempt span is the child of its call span').not.to.equal(undefined);
    }
    expect(attempts[0]!.attributes).to.include({ 'http.request.method': 'GET', 'server.address': '127.0.0.1', 'http.response.status_code': 200 });
  }

  it('A (meshfetch, --import meshfetch/register) calls B (node:http, instrumentation-http): B’s server span is the child of A’s attempt span', async function () {
    const spans = await run(['--import', 'meshfetch/register']);
    expectChildOfAttempts(spans);
    expect(receiver.paths).to.include('POST /v1/traces application/json');
    const aMetrics = receiver.metrics.filter((m) => m.service === 'service-a' && m.scope === 'meshfetch').map((m) => [m.name, m.unit]);
    expect(aMetrics).to.deep.include.members([
      ['http.client.request.duration', 's'],
      ['meshfetch.client.call.duration', 's'],
    ]);
  });

  for (const transport of ['undici', 'got']) {
    it(`A also runs instrumentation-http and -undici (${transport} transport): still one CLIENT span per attempt, and B is its child`, async function () {
      const spans = await run(['--import', 'meshfetch/register', '--import', fixture('instrument-http.ts')], { MESH_TRANSPORT: transport });
      expectChildOfAttempts(spans);
      // The control call A made outside the mesh is traced by the instrumentation: it is live, and
      // it is the only span in A that is not meshfetch's.
      const instrumented = spans.filter((s) => s.service === 'service-a' && s.scope !== 'meshfetch');
      const expected = transport === 'got' ? '@opentelemetry/instrumentation-http' : '@opentelemetry/instrumentation-undici';
      expect(instrumented.map((s) => [s.scope, s.kind])).to.deep.equal([[expected, SPAN_KIND.client]]);
      const controlServer = spans.filter((s) => s.service === 'service-b' && s.parentSpanId === instrumented[0]!.spanId);
      expect(controlServer, 'B saw the control call as its child too').to.have.length(1);
    });
  }
});

describe('meshfetch/register without @opentelemetry/sdk-node installed', function () {
  it('fails at start with an error that names the package to install', async function () {
    // A resolve hook makes the package unresolvable, as it is where it was never installed.
    const hide = `data:text/javascript,${encodeURIComponent(
      `import { register } from 'node:module';
       register('data:text/javascript,' + encodeURIComponent(\`export async function resolve(specifier, context, next) {
         if (specifier === '@opentelemetry/sdk-node') {
           throw Object.assign(new Error("Cannot find package '@opentelemetry/sdk-node' imported from " + context.parentURL), { code: 'ERR_MODULE_NOT_FOUND' });
         }
         return next(specifier, context);
       }\`));`,
    )}`;
    const child = node(['--import', hide, '--import', 'meshfetch/register', '-e', 'console.log("app ran")'], {});
    expect(await child.exited).to.equal(1);
    expect(child.stdout).not.to.include('app ran');
    expect(child.stderr).to.include('MESHFETCH_CONFIG');
    expect(child.stderr).to.include('npm install @opentelemetry/sdk-node');
  });
});
