import type { HeaderRecord } from '../pipeline/types.ts';
import { MAX_MATCHED_LENGTH } from './safe-regex.ts';

/** A header or query value condition, compiled: an exact string, or a regex checked by safe-regex.ts. */
export type ValueMatch = string | RegExp;

/**
 * One `match` block of a route, compiled. A route with several blocks has one of these per block;
 * any may match. `T` is what a match selects (the compiled route).
 */
export interface CompiledMatch<T> {
  readonly target: T;
  readonly methods: ReadonlySet<string> | null;
  /** A path template ("/charges/:id"), compiled; null when the block gives a prefix (or no path). */
  readonly template: RegExp | null;
  /** A path prefix; "/" when the block gives no path at all. */
  readonly prefix: string | null;
  readonly headers: readonly (readonly [string, ValueMatch])[];
  readonly query: readonly (readonly [string, ValueMatch])[];
}

/** How specific a block is, by the Gateway API's HTTPRoute precedence; compared key by key. */
function rank(m: CompiledMatch<unknown>, exactPath: boolean, prefixLength: number): number[] {
  return [exactPath ? 1 : 0, prefixLength, m.methods === null ? 0 : 1, m.headers.length, m.query.length];
}

/**
 * Sorts blocks so that the first that matches is the most specific: an exact path (a template
 * without "/*") before a prefix, a longer prefix first (a template "/a/*" counts as the prefix
 * "/a"), a block with a method before one without, more header matches first, then more query
 * matches, then document order (the sort is stable).
 */
export function byPrecedence<T>(matches: CompiledMatch<T>[], templates: readonly (string | null)[]): CompiledMatch<T>[] {
  const ranks = new Map<CompiledMatch<T>, number[]>();
  matches.forEach((m, i) => {
    const template = templates[i] ?? null;
    const wildcard = template?.endsWith('/*') ?? false;
    const literal = template === null ? (m.prefix ?? '/') : wildcard ? template.slice(0, -2) : template;
    ranks.set(m, rank(m, template !== null && !wildcard, literal.length));
  });
  return [...matches].sort((a, b) => {
    const ra = ranks.get(a)!;
    const rb = ranks.get(b)!;
    for (let i = 0; i < ra.length; i++) if (ra[i] !== rb[i]) return rb[i]! - ra[i]!;
    return 0;
  });
}

function valueMatches(expected: ValueMatch, value: string | undefined): boolean {
  if (value === undefined) return false;
  if (typeof expected === 'string') return value === expected;
  return value.length <= MAX_MATCHED_LENGTH && expected.test(value);
}

function headerMatches(expected: ValueMatch, value: string | string[] | undefined): boolean {
  if (typeof value !== 'object') return valueMatches(expected, value);
  for (const one of value) if (valueMatches(expected, one)) return true;
  return false;
}

/** A path prefix matches at a "/" boundary: "/beta" matches "/beta" and "/beta/x", not "/betamax". */
function underPrefix(path: string, prefix: string): boolean {
  if (!path.startsWith(prefix)) return false;
  return path.length === prefix.length || prefix.endsWith('/') || path[prefix.length] === '/';
}

/**
 * The target of the first block (in precedence order) that the call matches. `path` is path and
 * query; the query string is parsed only when a block asks for a query value, once per call.
 */
export function firstMatch<T>(matches: readonly CompiledMatch<T>[], method: string, path: string, headers: HeaderRecord): T | undefined {
  const q = path.indexOf('?');
  const bare = q === -1 ? path : path.slice(0, q);
  let query: URLSearchParams | undefined;
  // Blocks that share a template share its RegExp (compileMatches), and equal templates rank side by
  // side: the last test's answer is reused.
  let tested: RegExp | null = null;
  let passed = false;
  for (const m of matches) {
    if (m.methods !== null && !m.methods.has(method)) continue;
    // Header comparisons are cheaper than a path regex, so they go first; the outcome is the same.
    let ok = true;
    for (const [name, expected] of m.headers) {
      if (!headerMatches(expected, headers[name])) {
        ok = false;
        break;
      }
    }
    if (!ok) continue;
    if (m.template !== null) {
      if (m.template !== tested) {
        tested = m.template;
        passed = m.template.test(bare);
      }
      if (!passed) continue;
    } else if (!underPrefix(bare, m.prefix!)) continue;
    if (m.query.length > 0) {
      query ??= new URLSearchParams(q === -1 ? '' : path.slice(q + 1));
      for (const [name, expected] of m.query) {
        if (!valueMatches(expected, query.get(name) ?? undefined)) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
    }
    return m.target;
  }
  return undefined;
}
