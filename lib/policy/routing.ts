import { didYouMean } from '../did-you-mean.ts';
import { NO_ROUTING } from '../routing/actions.ts';
import type { Fault, Mirror, RoutingActions, Split, SplitBackend } from '../routing/actions.ts';
import { byPrecedence } from '../routing/route-match.ts';
import type { CompiledMatch, ValueMatch } from '../routing/route-match.ts';
import { regexProblem } from '../routing/safe-regex.ts';
import type { Problems } from './schema.ts';

type Layer = Record<string, unknown>;
interface SplitEntry {
  service: string;
  weight: number;
}
interface MatchBlock {
  method?: string | string[];
  path?: string;
  prefix?: string;
  headers?: Record<string, string | { regex: string }>;
  query?: Record<string, string | { regex: string }>;
}

/** The split a layer writes: `split`, or `backend` as its one-entry form; undefined when it writes neither. */
function splitEntries(layer: Layer, path: string, problems: Problems): SplitEntry[] | undefined {
  if (layer.split !== undefined && layer.backend !== undefined) problems.push(`${path}: set split or backend, not both`);
  if (layer.backend !== undefined) return [{ service: layer.backend as string, weight: 1 }];
  return layer.split as SplitEntry[] | undefined;
}

/**
 * Resolves a split into the services that serve calls, with their share: an entry naming a service
 * that has its own service-level split is replaced by that split's backends (weights multiplied), so
 * a call makes one pick. An entry naming the splitting service itself stops there (its own
 * endpoints). Reaching a service already on the way (a → b → a) is a loop.
 */
function flatten(
  entries: readonly SplitEntry[],
  chain: readonly string[],
  share: number,
  services: Record<string, Layer>,
  out: Map<string, number>,
  path: string,
  problems: Problems,
): void {
  const total = entries.reduce((sum, e) => sum + e.weight, 0);
  if (total === 0) return; // reported where that split is written
  const self = chain[chain.length - 1]!;
  for (const entry of entries) {
    const weight = (share * entry.weight) / total;
    if (weight === 0) continue;
    const nested = entry.service === self ? undefined : splitEntries(services[entry.service] ?? {}, '', []);
    if (entry.service !== self && chain.includes(entry.service)) {
      problems.push(`${path}: the split loops: ${[...chain, entry.service].join(' → ')}`);
    } else if (nested && chain.length < 16) {
      flatten(nested, [...chain, entry.service], weight, services, out, path, problems);
    } else {
      out.set(entry.service, (out.get(entry.service) ?? 0) + weight);
    }
  }
}

function knownService(name: string, where: string, services: Record<string, Layer>, problems: Problems): boolean {
  if (Object.hasOwn(services, name)) return true;
  problems.push(`${where}: unknown service "${name}"; it must be one of the policy's services${didYouMean(name, Object.keys(services))}`);
  return false;
}

function compileSplit(
  entries: readonly SplitEntry[],
  owner: string,
  path: string,
  entryPath: (i: number) => string,
  services: Record<string, Layer>,
  problems: Problems,
): Split | null {
  let known = true;
  entries.forEach((e, i) => (known = knownService(e.service, entryPath(i), services, problems) && known));
  if (entries.every((e) => e.weight === 0)) {
    problems.push(`${path}: every weight is 0; at least one backend must take traffic`);
    return null;
  }
  if (!known) return null;
  const shares = new Map<string, number>();
  flatten(entries, [owner], 1, services, shares, path, problems);
  let upTo = 0;
  const backends: SplitBackend[] = [];
  for (const [service, share] of shares) backends.push({ service, upTo: (upTo += share) });
  return { backends, total: upTo };
}

/**
 * The routing actions of one layer (a service, or a route over its service's): a key the layer
 * does not write is inherited, `null` switches fault or mirror off.
 */
export function compileRouting(
  layer: Layer,
  inherited: RoutingActions,
  owner: string,
  path: string,
  services: Record<string, Layer>,
  problems: Problems,
): RoutingActions {
  const entries = splitEntries(layer, path, problems);
  const byBackend = layer.backend !== undefined;
  const splitPath = `${path}.${byBackend ? 'backend' : 'split'}`;
  const entryPath = (i: number): string => (byBackend ? splitPath : `${splitPath}[${i}].service`);
  const split = entries === undefined ? inherited.split : compileSplit(entries, owner, splitPath, entryPath, services, problems);
  const written = layer.fault as Partial<Fault> | null | undefined;
  if (written && written.abort === undefined && written.delay === undefined) problems.push(`${path}.fault: give abort, delay or both (null switches an inherited fault off)`);
  const fault = written === undefined ? inherited.fault : written && { abort: written.abort ?? null, delay: written.delay ?? null };
  let mirror = inherited.mirror;
  if (layer.mirror !== undefined) {
    const target = layer.mirror as { service: string; percent?: number } | null;
    mirror = target && { service: target.service, percent: target.percent ?? 100 };
    if (target) {
      knownService(target.service, `${path}.mirror.service`, services, problems);
      if (target.service === owner) problems.push(`${path}.mirror.service: a service cannot mirror its own traffic to itself`);
    }
  }
  if (split === inherited.split && fault === inherited.fault && mirror === inherited.mirror) return inherited;
  if (split === null && fault === null && mirror === null) return NO_ROUTING;
  return { split, fault, mirror: mirror as Mirror | null };
}

function compileValues(values: MatchBlock['headers'], path: string, lowerCase: boolean, problems: Problems): [string, ValueMatch][] {
  return Object.entries(values ?? {}).map(([name, value]) => {
    const key = lowerCase ? name.toLowerCase() : name;
    if (typeof value === 'string') return [key, value];
    const problem = regexProblem(value.regex);
    if (problem !== undefined) problems.push(`${path}.${name}.regex: ${JSON.stringify(value.regex)} ${problem}`);
    return [key, problem === undefined ? new RegExp(value.regex, 'u') : /$^/];
  });
}

/**
 * Every match block of a service's routes, in precedence order (route-match.ts). `compileTemplate`
 * turns a path template into its regex.
 */
export function compileMatches<T>(
  routes: readonly { doc: Layer; target: T }[],
  path: string,
  compileTemplate: (template: string) => RegExp,
  problems: Problems,
): CompiledMatch<T>[] {
  const matches: CompiledMatch<T>[] = [];
  const templates: (string | null)[] = [];
  const compiled = new Map<string, RegExp>();
  const templateRegex = (template: string): RegExp => {
    let regex = compiled.get(template);
    if (!regex) compiled.set(template, (regex = compileTemplate(template)));
    return regex;
  };
  routes.forEach(({ doc, target }, i) => {
    (doc.match as MatchBlock[]).forEach((block, j) => {
      const where = `${path}.routes[${i}].match${(doc.match as MatchBlock[]).length > 1 ? `[${j}]` : ''}`;
      if (block.path !== undefined && block.prefix !== undefined) problems.push(`${where}: set path or prefix, not both`);
      matches.push({
        target,
        methods: block.method === undefined ? null : new Set([block.method].flat()),
        template: block.path === undefined ? null : templateRegex(block.path),
        prefix: block.path === undefined ? (block.prefix ?? '/') : null,
        headers: compileValues(block.headers, `${where}.headers`, true, problems),
        query: compileValues(block.query, `${where}.query`, false, problems),
      });
      templates.push(block.path ?? null);
    });
  });
  return byPrecedence(matches, templates);
}
