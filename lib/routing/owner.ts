import type { CompiledPolicy, CompiledService } from '../policy/compile.ts';

export interface UrlOwner {
  readonly service: CompiledService;
  /** Other services with the same origin and the same base path: the owner was the first listed. */
  readonly alsoMatched: readonly CompiledService[];
}

function under(path: string, basePath: string): boolean {
  return basePath === '' || path === basePath || (path.startsWith(basePath) && path[basePath.length] === '/');
}

/**
 * The service an absolute URL belongs to: among the services with an endpoint at its origin, the one
 * whose endpoint base path is the longest prefix of the URL's path (at a "/" boundary). When several
 * services have that same base path, the one listed first in the document wins and the others are
 * named in `alsoMatched`, so that the caller can say so once.
 */
export function ownerOf(policy: CompiledPolicy, url: URL): UrlOwner | undefined {
  const owners = policy.byOrigin.get(url.origin);
  if (!owners) return undefined;
  const path = url.pathname;
  for (let i = 0; i < owners.length; i++) {
    const owner = owners[i]!;
    if (!under(path, owner.basePath)) continue;
    const alsoMatched: CompiledService[] = [];
    for (let j = i + 1; j < owners.length && owners[j]!.basePath === owner.basePath; j++) {
      if (owners[j]!.service !== owner.service && !alsoMatched.includes(owners[j]!.service)) alsoMatched.push(owners[j]!.service);
    }
    return { service: owner.service, alsoMatched };
  }
  return undefined;
}
