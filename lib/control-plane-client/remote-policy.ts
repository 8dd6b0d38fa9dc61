import type { MeshEvents, PolicySource } from '../events.ts';
import type { Logger } from '../log.ts';
import { compilePolicy } from '../policy/compile.ts';
import type { CompiledPolicy } from '../policy/compile.ts';
import type { PolicyStore } from '../policy/store.ts';
import { fullJitterBackoff } from '../resilience/backoff.ts';
import type { TlsPem } from '../tls/material.ts';
import { cacheFile, readCachedPolicy, writeCachedPolicy } from './cache.ts';
import { RevisionReporter } from './reporter.ts';
import type { ServerSentEvent } from './sse.ts';
import { openWatch } from './watch.ts';
import { controlPlaneUrl } from './url.ts';

/** How the client paces itself against the control plane (milliseconds). */
export interface ControlPlaneTiming {
  /** With no answer this long after start, the cache, the local file or the defaults go in force (default 1000). */
  fallbackAfter: number;
  /** Reconnect backoff: full jitter between `reconnectMin` and min(max, base × 2^n) (defaults 50, 250, 10000). */
  reconnectMin: number;
  reconnectBase: number;
  reconnectMax: number;
  /** Silence that ends a watch stream; default: three of the heartbeats the control plane announces, plus 1 s. */
  silenceTimeout: number | undefined;
}

const DEFAULT_TIMING: ControlPlaneTiming = { fallbackAfter: 1_000, reconnectMin: 50, reconnectBase: 250, reconnectMax: 10_000, silenceTimeout: undefined };

export interface RemotePolicyOptions {
  /** The control plane, or its replicas: the watch moves to the next one when its stream is lost. */
  readonly controlPlanes: readonly URL[];
  readonly service: string;
  readonly instance: string;
  readonly store: PolicyStore;
  readonly events: MeshEvents;
  readonly logger: Logger;
  readonly tls: TlsPem;
  readonly random: () => number;
  readonly cacheDir: string | undefined;
  /** What goes in force when the control plane cannot be reached and nothing is cached: MESHFETCH_POLICY or the defaults. */
  readonly fallback: { readonly policy: CompiledPolicy; readonly source: PolicySource };
  readonly timing?: Partial<ControlPlaneTiming> | undefined;
}

/**
 * Keeps a mesh's policy in step with the control plane. It watches GET /v1/policy/watch, applies each
 * revision atomically (one PolicyStore.install), refuses one it cannot compile (a NACK: the policy in
 * force stays) and reports both. When the control plane is down at start it puts the cached
 * last-known-good in force, else the local file, else the defaults, and keeps reconnecting; down
 * mid-run, nothing changes for calls. One stream and one timer per mesh.
 */
export class RemotePolicy {
  readonly #options: RemotePolicyOptions;
  readonly #timing: ControlPlaneTiming;
  readonly #reporter: RevisionReporter;
  readonly #cacheFile: string | undefined;
  #stopWatch: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #failures = 0;
  #closed = false;
  /** The revision the control plane last sent that this client applied (not a fallback's). */
  #applied: string | undefined;
  /** The revision last refused: sent again after a reconnect, it is not refused (and logged) twice. */
  #refused: string | undefined;
  #cacheWrites: Promise<void> = Promise.resolve();
  /** Index in controlPlanes of the replica watched now; a random start spreads meshes over replicas. */
  #target: number;

  constructor(options: RemotePolicyOptions) {
    this.#options = options;
    this.#timing = { ...DEFAULT_TIMING, ...options.timing };
    this.#target = Math.floor(options.random() * options.controlPlanes.length) % options.controlPlanes.length;
    this.#reporter = new RevisionReporter(this.#controlPlane(), { service: options.service, instance: options.instance }, options.tls, options.logger);
    this.#cacheFile = options.cacheDir === undefined ? undefined : cacheFile(options.cacheDir, options.controlPlanes);
    this.#timer = setTimeout(() => this.#useFallback('no answer yet'), this.#timing.fallbackAfter);
    this.#connect();
  }

  /** Stops watching; waits for a cache write in progress. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#stopWatch?.();
    this.#reporter.close();
    await this.#cacheWrites;
  }

  /** The replica watched now; a mesh's figures are reported there too. */
  get controlPlane(): URL {
    return this.#controlPlane();
  }

  #controlPlane(): URL {
    return this.#options.controlPlanes[this.#target]!;
  }

  #connect(): void {
    const { service, instance } = this.#options;
    const controlPlane = this.#controlPlane();
    this.#reporter.useControlPlane(controlPlane);
    const headers: Record<string, string> = { 'x-meshfetch-service': service, 'x-meshfetch-instance': instance };
    if (this.#applied !== undefined) headers['last-event-id'] = this.#applied;
    this.#stopWatch = openWatch(
      { url: controlPlaneUrl(controlPlane, '/v1/policy/watch'), headers, tls: this.#options.tls, silenceTimeout: this.#timing.silenceTimeout },
      {
        onOpen: () => {
          this.#failures = 0;
          this.#reporter.resend();
        },
        onEvent: (event) => this.#onEvent(event),
        onClose: (reason) => this.#onClose(reason),
      },
    );
  }

  #onEvent(event: ServerSentEvent): void {
    if (event.event !== 'policy') return;
    if (event.id !== undefined && (event.id === this.#applied || event.id === this.#refused)) return;
    this.#apply(event.id, event.data);
  }

  #apply(revision: string | undefined, data: string): void {
    const { store, events, logger } = this.#options;
    let policy: CompiledPolicy;
    let document: unknown;
    try {
      document = JSON.parse(data);
      policy = compilePolicy(document, `control plane revision ${revision ?? '(none)'}`);
    } catch (err) {
      const error = (err as Error).message;
      this.#refused = revision;
      logger.warn('policy revision refused; the policy in force stays', { revision, inForce: store.current?.revision, error });
      this.#reporter.report({ revision, status: 'rejected', error });
      if (events.has('policy')) events.emit('policy', { revision, source: 'control-plane', applied: false, error });
      // With nothing in force yet, a refused first revision must not leave calls waiting.
      if (!store.current) this.#useFallback('first revision refused');
      return;
    }
    clearTimeout(this.#timer);
    store.install(policy);
    this.#applied = policy.revision;
    logger.info('policy revision applied', { revision: policy.revision, services: policy.services.size });
    this.#reporter.report({ revision: policy.revision, status: 'applied', error: undefined });
    if (events.has('policy')) events.emit('policy', { revision: policy.revision, source: 'control-plane', applied: true, error: undefined });
    this.#cache(policy.revision, document);
  }

  #cache(revision: string | undefined, document: unknown): void {
    const file = this.#cacheFile;
    const dir = this.#options.cacheDir;
    if (file === undefined || dir === undefined || revision === undefined) return;
    this.#cacheWrites = this.#cacheWrites
      .then(() => writeCachedPolicy(file, dir, { revision, document }))
      .catch((err: unknown) => this.#options.logger.warn('cannot write the policy cache', { file, error: String(err) }));
  }

  #onClose(reason: Error): void {
    this.#stopWatch = undefined;
    if (this.#closed) return;
    this.#failures++;
    // Another replica, if there are several: it names revisions the same way, so Last-Event-ID resumes there.
    const from = this.#controlPlane().origin;
    this.#target = (this.#target + 1) % this.#options.controlPlanes.length;
    this.#options.logger.debug('control plane watch closed; reconnecting', { error: reason.message, failures: this.#failures, from, to: this.#controlPlane().origin });
    // A first connection that fails outright need not wait out fallbackAfter.
    if (!this.#options.store.current) this.#useFallback(reason.message);
    const { reconnectMin, reconnectBase, reconnectMax } = this.#timing;
    const delay = Math.max(reconnectMin, fullJitterBackoff(this.#failures, reconnectBase, reconnectMax, this.#options.random));
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#connect(), delay);
  }

  /** Puts the cached last-known-good in force, else the local fallback; only while nothing is in force. */
  #useFallback(why: string): void {
    const { store, events, logger, fallback } = this.#options;
    if (store.current || this.#closed) return;
    const cached = this.#cacheFile === undefined ? undefined : readCachedPolicy(this.#cacheFile);
    let chosen: { policy: CompiledPolicy; source: PolicySource } = fallback;
    if (cached) {
      try {
        chosen = { policy: compilePolicy(cached.document, `policy cache ${this.#cacheFile}`), source: 'cache' };
      } catch (err) {
        logger.warn('policy cache refused', { file: this.#cacheFile, error: (err as Error).message });
      }
    }
    store.install(chosen.policy);
    logger.warn('control plane not reached; using the fallback policy until it is', {
      controlPlane: this.#controlPlane().origin,
      source: chosen.source,
      revision: chosen.policy.revision,
      why,
    });
    if (events.has('policy')) events.emit('policy', { revision: chosen.policy.revision, source: chosen.source, applied: true, error: undefined });
  }
}
