import type { CompiledService } from '../policy/compile.ts';
import type { PolicyStore } from '../policy/store.ts';
import type { OriginTls, TransportTls } from '../transport/types.ts';
import { serverIdentityCheck } from './identity.ts';
import type { TlsMaterial } from './material.ts';
import type { CertificateWatcher } from './watcher.ts';

/**
 * The client side of mesh TLS, as transports see it. For an https origin of a service named in
 * policy (tls.mode not `disabled`): trust only the mesh CA bundle, present this service's
 * certificate, and check the server's certificate against the service's `identity`. Any other origin
 * gets the platform defaults. One answer per (service, material) is built and kept, so transports
 * can cache by identity, and a lookup costs two map reads.
 */
export class ClientTls implements TransportTls {
  readonly #store: PolicyStore;
  readonly #watcher: CertificateWatcher | undefined;
  #cache = new WeakMap<CompiledService, OriginTls | null>();

  constructor(store: PolicyStore, watcher: CertificateWatcher | undefined) {
    this.#store = store;
    this.#watcher = watcher;
    watcher?.onRotate(() => {
      this.#cache = new WeakMap();
    });
  }

  /**
   * Connections are per origin: when several services share one (a gateway), the origin's TLS is
   * that of the first of them in byOrigin (longest base path first), as its connect timeout is.
   */
  forOrigin(origin: string): OriginTls | undefined {
    const service = this.#store.current?.byOrigin.get(origin)?.[0]?.service;
    if (!service || !origin.startsWith('https:')) return undefined;
    let tls = this.#cache.get(service);
    if (tls === undefined) this.#cache.set(service, (tls = originTls(service, this.#watcher?.current)));
    return tls ?? undefined;
  }

  onRotate(listener: () => void): () => void {
    return this.#watcher?.onRotate(listener) ?? (() => {});
  }
}

function originTls(service: CompiledService, material: TlsMaterial | undefined): OriginTls | null {
  if (service.policy.tls.mode === 'disabled') return null;
  const tls: OriginTls = {};
  if (material) {
    // secureContext serves undici (built once); the texts serve got, which takes no secureContext.
    Object.assign(tls, { secureContext: material.secureContext, ca: material.ca, cert: material.cert, key: material.key });
  }
  if (service.identity !== undefined) tls.checkServerIdentity = serverIdentityCheck(service.name, service.identity);
  return Object.keys(tls).length === 0 ? null : tls;
}
