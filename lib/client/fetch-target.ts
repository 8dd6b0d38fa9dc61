import { configError } from '../errors.ts';
import type { CompiledPolicy, CompiledService } from '../policy/compile.ts';
import { ownerOf } from '../routing/owner.ts';

/** Where mesh.fetch() sends a URL. */
export type FetchTarget =
  /** http://<service>/path: the service's endpoints, chosen per attempt. */
  | { readonly kind: 'service'; readonly service: CompiledService; readonly path: string }
  /**
   * Under an endpoint of a service (the longest matching base path, see ownerOf): that origin, under
   * the service's policy. `alsoMatched` names services with the very same origin and base path.
   */
  | { readonly kind: 'origin'; readonly service: CompiledService; readonly alsoMatched: readonly CompiledService[] }
  /** Anything else: the platform fetch, untouched. */
  | { readonly kind: 'pass-through' };

/**
 * The platform fetch refuses a URL with user:password@ in it, and so does the mesh, rather than drop
 * the credentials silently. The message does not quote the URL, which holds the password.
 */
export function refuseCredentials(url: URL): void {
  if (url.username !== '' || url.password !== '') {
    throw new TypeError('Request cannot be constructed from a URL that includes credentials (send them in an Authorization header)');
  }
}

/**
 * The rule for mesh.fetch(): the host of `http://<name>/…` (no port) is a service named in policy,
 * matched case-insensitively because URL hosts are lower-cased (service names are lower case). The
 * mesh picks the scheme from the endpoints, so `http://<name>/` may reach https endpoints; asking for
 * `https://<name>/` promises TLS, so it is refused when an endpoint of the service is plain http.
 */
export function fetchTarget(policy: CompiledPolicy | undefined, url: URL): FetchTarget {
  refuseCredentials(url);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { kind: 'pass-through' };
  const named = url.port === '' ? policy?.services.get(url.hostname) : undefined;
  if (named) {
    if (url.protocol === 'https:') {
      const plain = named.endpoints.find((endpoint) => endpoint.origin.startsWith('http:'));
      if (plain) {
        throw configError(
          `https://${named.name}/ asks for TLS, but services.${named.name} has the plain endpoint ${plain.origin}; use http://${named.name}/ (the policy's endpoints decide the scheme) or https endpoints`,
        );
      }
    }
    return { kind: 'service', service: named, path: url.pathname + url.search };
  }
  const owner = policy && ownerOf(policy, url);
  return owner ? { kind: 'origin', service: owner.service, alsoMatched: owner.alsoMatched } : { kind: 'pass-through' };
}
