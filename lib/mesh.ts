import { randomUUID } from 'node:crypto';
import type { Server, ServerOptions } from 'node:https';
import { hostname } from 'node:os';
import { resolveSettings } from './config/options.ts';
import type { EnvironmentOptions, MeshSettings } from './config/options.ts';
import { unreportedUnknownVariables } from './config/variables.ts';
import type { ServiceContract, TypedRoutes } from './client/contract.ts';
import { waitForPolicy } from './client/call.ts';
import type { MeshCore } from './client/call.ts';
import { clientScope } from './client/client-defaults.ts';
import type { ClientDefaults } from './client/client-defaults.ts';
import { fetchTarget } from './client/fetch-target.ts';
import { passThrough } from './client/pass-through.ts';
import { RemotePolicy } from './control-plane-client/remote-policy.ts';
import type { ControlPlaneTiming } from './control-plane-client/remote-policy.ts';
import { ServiceClient } from './client/service-client.ts';
import { typedClient } from './client/typed-client.ts';
import type { MeshRequestInit } from './client/service-client.ts';
import { configError, ErrorCode, MeshError } from './errors.ts';
import { MeshEvents } from './events.ts';
import type { MeshEventListener, MeshEventName, PolicySource } from './events.ts';
import { createLogger, fromUserLogger } from './log.ts';
import type { Logger, UserLogger } from './log.ts';
import { CallsInFlight } from './pipeline/calls-in-flight.ts';
import { closedError } from './resilience/deadline.ts';
import { compose, rejectingThrows } from './pipeline/compose.ts';
import { buildStack } from './pipeline/layers.ts';
import { BUILT_IN_LAYERS, DEFAULT_STACK } from './stack.ts';
import type { Layer, LayerDeps, MiddlewareSpec } from './pipeline/layers.ts';
import type { CallContext } from './pipeline/types.ts';
import { BUILT_IN_POLICY, compilePolicy } from './policy/compile.ts';
import type { CompiledPolicy } from './policy/compile.ts';
import { SERVICE_NAME, SERVICE_NAME_RULE } from './policy/document-schema.ts';
import { MAX_TIMER_MS } from './policy/duration.ts';
import { loadPolicyFile } from './policy/load.ts';
import { PolicyStore } from './policy/store.ts';
import type { CallPolicy, PolicyDocument } from './policy/types.ts';
import type { UrlOwner } from './routing/owner.ts';
import { MeshMetrics } from './telemetry/metrics.ts';
import { StatsReporter } from './control-plane-client/stats-reporter.ts';
import { StatsCollector } from './telemetry/stats.ts';
import type { MeshStatsSnapshot } from './telemetry/stats.ts';
import type { Transport, TransportFactory } from './transport/types.ts';
import { undiciTransport } from './transport/undici.ts';
import { ClientTls } from './tls/client.ts';
import { createMeshServer, serverOptionsFrom } from './tls/server.ts';
import type { MeshRequestHandler } from './tls/server.ts';
import { CertificateWatcher } from './tls/watcher.ts';
import type { CertificateStatus } from './tls/watcher.ts';

export interface MeshOptions extends EnvironmentOptions {
  /** An inline policy document; wins over MESHFETCH_POLICY. */
  policy?: PolicyDocument;
  /** The transport (default: undiciTransport()). `gotTransport()` comes from 'meshfetch/got'. */
  transport?: TransportFactory;
  /** Your middleware, placed before or after a named layer of the default stack. */
  middleware?: readonly MiddlewareSpec[];
  /** Where variables are read from (default: process.env). */
  env?: Readonly<Record<string, string | undefined>>;
  /** How long a call made before any policy is in force waits for one, in ms (default 5000). */
  readyTimeout?: number;
  /**
   * Where meshfetch logs (default: JSON lines on stderr at MESHFETCH_LOG_LEVEL). A pino-compatible
   * logger (`log(fields, message)` or `log(message)`), such as pino, bunyan or console; it filters by
   * its own level.
   */
  logger?: UserLogger;
  /** Source of randomness for backoff jitter (default Math.random); tests pin it. */
  random?: () => number;
  /**
   * The built-in layers, outermost first (default DEFAULT_STACK). For measuring a pipeline with
   * fewer layers; to add behaviour, use `middleware`.
   */
  layers?: readonly Layer[];
  /** Pacing against the control plane (fallback delay, reconnect backoff, silence timeout), in ms. */
  controlPlaneTiming?: Partial<ControlPlaneTiming>;
  /** The sliding window of mesh.stats(), in ms (default 60000). */
  statsWindow?: number;
}

/** A defineService() contract has routes; a client's defaults object never does. */
function isContract(value: ServiceContract | ClientDefaults | undefined): value is ServiceContract {
  return typeof value === 'object' && value !== null && typeof (value as { routes?: unknown }).routes === 'object';
}

export interface CloseOptions {
  /** How long calls in flight may take to finish before they are aborted, in ms (default 5000). */
  grace?: number;
}

/** mesh.close()'s default grace period: long enough for an ordinary call, short beside a pod's 30 s. */
export const DEFAULT_CLOSE_GRACE_MS = 5_000;

/**
 * Resolves when `promise` settles or after `ms`, whichever is first; leaves no timer behind. Node's
 * timers fire at once beyond MAX_TIMER_MS, so a longer wait has no timer and lasts as long as `promise`.
 */
async function untilOrAfter(promise: Promise<unknown>, ms: number): Promise<void> {
  if (ms > MAX_TIMER_MS) return void (await promise.catch(() => undefined));
  let timer: NodeJS.Timeout | undefined;
  const elapsed = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  try {
    await Promise.race([promise.catch(() => undefined), elapsed]);
  } finally {
    clearTimeout(timer);
  }
}

function requestInit(request: Request): RequestInit {
  return { method: request.method, headers: request.headers, body: request.body, signal: request.signal, redirect: request.redirect };
}

function checkReadyTimeout(value: unknown): number {
  if (value === undefined) return 5_000;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_TIMER_MS) {
    throw configError(`createMesh option readyTimeout: expected whole milliseconds from 0 to ${MAX_TIMER_MS}, got ${String(value)}`);
  }
  return value;
}

export class Mesh {
  readonly settings: MeshSettings;
  readonly logger: Logger;
  readonly #store: PolicyStore;
  readonly #transport: Transport;
  readonly #core: MeshCore;
  readonly #events = new MeshEvents();
  readonly #stats: StatsCollector;
  readonly #metrics: MeshMetrics;
  readonly #shutdown = new AbortController();
  readonly #calls = new CallsInFlight<CallContext>();
  readonly #remote: RemotePolicy | undefined;
  readonly #reporter: StatsReporter | undefined;
  /** This mesh's id in the control plane's client list: several meshes may share a process. */
  readonly instance = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  readonly #warnedAmbiguous = new Set<string>();
  #closing: Promise<void> | undefined;
  readonly #certificates: CertificateWatcher | undefined;

  constructor(options: MeshOptions = {}) {
    const env = options.env ?? process.env;
    this.settings = resolveSettings(options, env);
    const readyTimeout = checkReadyTimeout(options.readyTimeout);
    this.logger = options.logger ? fromUserLogger(options.logger) : createLogger(this.settings.logLevel);
    for (const message of unreportedUnknownVariables(env)) this.logger.warn(message);
    const initial = this.#initialPolicy(options);
    this.#store = new PolicyStore(this.settings.controlPlane ? undefined : initial.policy);
    this.#stats = new StatsCollector(this.#events, {
      caller: this.settings.service,
      window: statsWindow(options.statsWindow),
      inPolicy: (service) => this.#store.current?.services.has(service) ?? false,
    });
    this.#metrics = new MeshMetrics(this.#events, this.settings.service);
    const { tls } = this.settings;
    if (tls.cert || tls.key || tls.ca) this.#certificates = new CertificateWatcher(tls, { events: this.#events, logger: this.logger });
    this.#transport = (options.transport ?? undiciTransport())({
      tls: new ClientTls(this.#store, this.#certificates),
      connectTimeoutFor: (origin) => this.#policyForOrigin(origin).connectTimeout,
    });
    const deps: LayerDeps = {
      events: this.#events,
      random: options.random ?? Math.random,
      shutdown: this.#shutdown.signal,
      calls: this.#calls,
      onPolicy: (listener) => this.#store.onInstall(listener),
    };
    const stack = buildStack(options.layers ?? DEFAULT_STACK, deps, options.middleware, BUILT_IN_LAYERS);
    const handler = compose(
      stack.map((entry) => entry.middleware),
      rejectingThrows((req, ctx) => this.#transport.request(req, ctx)),
    );
    this.#core = { store: this.#store, handler, readyTimeout, closed: false };
    if (this.settings.controlPlane) {
      this.#remote = new RemotePolicy({
        controlPlanes: this.settings.controlPlanes,
        service: this.settings.service,
        instance: this.instance,
        store: this.#store,
        events: this.#events,
        logger: this.logger,
        tls: this.#certificates?.livePems() ?? {},
        random: deps.random,
        cacheDir: this.settings.cacheDir,
        fallback: initial,
        timing: options.controlPlaneTiming,
      });
      if (this.settings.reportInterval !== undefined) {
        this.#reporter = new StatsReporter({
          controlPlanes: this.settings.controlPlanes,
          instance: this.instance,
          interval: this.settings.reportInterval,
          snapshot: () => this.#stats.snapshot(),
          tls: this.#certificates?.livePems() ?? {},
          logger: this.logger,
        });
      }
    }
  }

  /** The policy of the service an origin belongs to (the defaults for an unknown origin). */
  #policyForOrigin(origin: string): CallPolicy {
    const policy = this.#store.current ?? BUILT_IN_POLICY;
    // One connection pool per origin: when services share it, the longest base path's service decides.
    return policy.byOrigin.get(origin)?.[0]?.service.policy ?? policy.defaults;
  }

  /** The local policy: in force at once, or with a control plane, what it falls back to. */
  #initialPolicy(options: MeshOptions): { policy: CompiledPolicy; source: PolicySource } {
    if (options.policy !== undefined) return { policy: compilePolicy(options.policy, 'createMesh option policy'), source: 'option' };
    if (this.settings.policyFile !== undefined) return { policy: loadPolicyFile(this.settings.policyFile), source: 'file' };
    return { policy: BUILT_IN_POLICY, source: 'defaults' };
  }

  /** This service's name, as it appears in metrics, spans and authorization. */
  get service(): string {
    return this.settings.service;
  }

  /** The policy document's revision in force, if it named one. */
  get policyRevision(): string | undefined {
    return this.#store.current?.revision;
  }

  /**
   * Subscribes to a mesh event (call, attempt, retry, giveUp, budgetExhausted, hedge, circuit, limited, ejection, policy, certificate, …); returns the unsubscriber.
   * With `signal`, the listener is also removed when the signal aborts (and never added if it has).
   */
  on<K extends MeshEventName>(name: K, listener: MeshEventListener<K>, options: { signal?: AbortSignal } = {}): () => void {
    const { signal } = options;
    if (signal?.aborted) return () => {};
    const off = this.#events.on(name, listener);
    if (!signal) return off;
    const dispose = (): void => {
      signal.removeEventListener('abort', dispose);
      off();
    };
    signal.addEventListener('abort', dispose, { once: true });
    return dispose;
  }

  /**
   * Golden metrics per destination service and route over the sliding window (default 1 min):
   * requests, rate, success rate after retries and per attempt, latency quantiles, retries, hedges,
   * budget exhaustion, limits, give-ups, breaker state. Serialisable; mergeable with mergeFigures().
   */
  stats(): MeshStatsSnapshot {
    return this.#stats.snapshot();
  }

  /**
   * Resolves once a policy is in force: at once without a control plane; with one, when its first
   * revision (or, if it cannot be reached, the cache, the file or the defaults) is in force. Rejects
   * with MESHFETCH_CONFIG after readyTimeout.
   */
  ready(): Promise<void> {
    return waitForPolicy(this.#core, 'the control plane');
  }

  /**
   * Validates and installs a new policy document; the next call uses it. On a bad document it throws
   * MESHFETCH_CONFIG naming each bad path, and the policy in force stays as it was.
   */
  setPolicy(document: unknown, source = 'setPolicy()'): void {
    const policy = compilePolicy(document, source);
    this.#store.install(policy);
    this.logger.info('policy installed', { source, revision: policy.revision, services: policy.services.size });
  }

  /**
   * A client for `service`; with a contract from defineService(), one typed method per route. With
   * `defaults` ({ headers, timeout }), every call of the client carries them; a call's own value wins.
   * A client holds no state of its own (the mesh's layers do, per service in policy), so making one
   * is cheap and the mesh keeps none: keep it, or ask again.
   */
  client(service: string, defaults?: ClientDefaults): ServiceClient;
  client<C extends ServiceContract>(service: string, contract: C, defaults?: ClientDefaults): ServiceClient & TypedRoutes<C>;
  client(service: string, contractOrDefaults?: ServiceContract | ClientDefaults, defaults?: ClientDefaults): ServiceClient {
    if (typeof service !== 'string' || !SERVICE_NAME.test(service)) {
      throw configError(`mesh.client(${JSON.stringify(service)}): a service name is ${SERVICE_NAME_RULE}`);
    }
    const contract = isContract(contractOrDefaults) ? contractOrDefaults : undefined;
    const scope = clientScope(this.#core, service, contract ? defaults : (contractOrDefaults as ClientDefaults | undefined));
    return contract ? typedClient(scope, contract) : new ServiceClient(scope);
  }

  /**
   * A drop-in for the global fetch. A URL whose host is a service named in policy
   * (http://payments/charges/1), or whose origin is one of its endpoints, goes through the mesh;
   * any other URL goes to the platform fetch (with `timeout` honoured). The rules are in fetchTarget().
   */
  async fetch(input: string | URL | Request, init?: MeshRequestInit): Promise<Response> {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (!this.#store.current) await waitForPolicy(this.#core, url.hostname, { signal: init?.signal ?? undefined, timeout: init?.timeout });
    const target = fetchTarget(this.#store.current, url);
    switch (target.kind) {
      case 'service': {
        const request = input instanceof Request ? requestInit(input) : undefined;
        return new ServiceClient(clientScope(this.#core, target.service.name, undefined)).fetch(target.path, { ...request, ...init });
      }
      case 'origin':
        if (target.alsoMatched.length > 0) this.#warnAmbiguous(url, target);
        return new ServiceClient(clientScope(this.#core, target.service.name, undefined)).fetch(input, init);
      case 'pass-through':
        return passThrough(input, init);
    }
  }

  /** `await using mesh = createMesh()` closes the mesh when the block ends. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Said once per origin and service set, so that a hot path does not flood the log. */
  #warnAmbiguous(url: URL, owner: UrlOwner): void {
    const names = [owner.service.name, ...owner.alsoMatched.map((s) => s.name)];
    const key = `${url.origin} ${names.join(',')}`;
    if (this.#warnedAmbiguous.has(key)) return;
    this.#warnedAmbiguous.add(key);
    this.logger.warn('several services share this origin and base path; calls to it go to the first one listed in the policy', {
      origin: url.origin,
      chosen: owner.service.name,
      alsoMatched: names.slice(1).join(', '),
    });
  }

  /** This service's certificate: its subject, expiry and seconds left (a telemetry gauge reads this). */
  certificate(): CertificateStatus | undefined {
    return this.#certificates?.status();
  }

  /**
   * A node:https server for this service: requires a client certificate from the mesh CA, puts the
   * caller's identity on `req.caller`, answers 403 to a caller not in this service's `allow` list,
   * continues the caller's deadline, and follows certificate rotations.
   */
  createServer(handler: MeshRequestHandler): Server {
    return createMeshServer({ service: this.service, store: this.#store, watcher: this.#serverMaterial('createServer'), logger: this.logger }, handler);
  }

  /**
   * node:https options for a server a framework makes itself (mTLS as createServer() sets it up).
   * They are the material of this moment: on a `certificate` event with state `rotated`, pass
   * serverOptions() to the server's setSecureContext(). Authorization stays with the handler.
   */
  serverOptions(): ServerOptions {
    return serverOptionsFrom(this.#serverMaterial('serverOptions').current);
  }

  #serverMaterial(method: string): CertificateWatcher {
    const watcher = this.#certificates;
    if (!watcher?.current.cert || !watcher.current.ca) {
      throw configError(`mesh.${method}() needs a certificate, its key and the mesh CA: set MESHFETCH_TLS_CERT, MESHFETCH_TLS_KEY and MESHFETCH_TLS_CA`);
    }
    return watcher;
  }

  /**
   * Refuses new calls at once (MESHFETCH_CLOSED), lets calls under way finish (their bodies read or
   * destroyed; queued or between retries, they still send their attempts) for up to `grace` ms (default 5000), then aborts what is left with MESHFETCH_CLOSED,
   * releases every layer's state and closes every connection. After this the process can exit by
   * itself. A second call returns the first one's promise.
   */
  close(options: CloseOptions = {}): Promise<void> {
    const grace = options.grace ?? DEFAULT_CLOSE_GRACE_MS;
    if (typeof grace !== 'number' || !(grace >= 0)) {
      return Promise.reject(configError(`mesh.close() option grace: expected milliseconds >= 0, got ${String(grace)}`));
    }
    this.#closing ??= this.#close(grace);
    return this.#closing;
  }

  async #close(grace: number): Promise<void> {
    this.#core.closed = true;
    // The control plane's watch needs no grace: the policy in force stays in force until the end.
    const remoteClosed = this.#remote?.close();
    this.#reporter?.close();
    // The transport closes only after the grace: a call queued in a bulkhead or between retries
    // still has attempts to send, and a closed transport would refuse them.
    await untilOrAfter(this.#calls.idle(), grace);
    this.#calls.abortAll(closedError);
    this.#shutdown.abort(new MeshError(ErrorCode.Closed, `the mesh was closed (grace period ${grace}ms)`));
    this.#metrics.close();
    this.#certificates?.close();
    await Promise.all([remoteClosed, this.#transport.close()]);
  }
}

function statsWindow(value: number | undefined): number | undefined {
  if (value === undefined || (Number.isFinite(value) && value >= 1_000)) return value;
  throw configError(`createMesh option statsWindow: expected milliseconds >= 1000, got ${String(value)}`);
}

/**
 * Creates a mesh. Synchronous: reads MESHFETCH_* and OTEL_SERVICE_NAME (options override them),
 * validates them and any local policy file, and throws MESHFETCH_CONFIG naming a bad value.
 */
export function createMesh(options: MeshOptions = {}): Mesh {
  return new Mesh(options);
}
