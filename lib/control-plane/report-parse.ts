import type { CircuitState } from '../events.ts';
import { parseDuration } from '../policy/duration.ts';
import { isPlainObject } from '../policy/schema.ts';
import { OTHER } from '../telemetry/stats.ts';
import type { SketchBins } from '../telemetry/tally.ts';
import { EDGE_COUNTS, MAX_BIN_KEY, MAX_REPORT_EDGES } from '../telemetry/report.ts';
import type { EdgeReport, StatsReport } from '../telemetry/report.ts';
import { CLIENT_IDENTITY } from './clients.ts';
import { Refusal } from './http.ts';

const BREAKER_STATES: readonly CircuitState[] = ['closed', 'half-open', 'open'];
const ROUTE_NAME = /^[^\p{Cc}]{1,128}$/u;
/** The client's sketches collapse to at most 1,024 bins. */
const MAX_BINS = 1_024;
const MAX_COUNT = 1e12;

function invalid(where: string, expected: string): never {
  throw new Refusal(400, 'invalid-report', `${where}: expected ${expected}`);
}

const isCount = (value: unknown): value is number => Number.isInteger(value) && (value as number) >= 0 && (value as number) <= MAX_COUNT;

function parseEdge(value: unknown, where: string): EdgeReport {
  if (!isPlainObject(value)) invalid(where, 'an object');
  const { to, route, breaker, latency, windowMs } = value;
  if (typeof to !== 'string' || (to !== OTHER && !CLIENT_IDENTITY.test(to))) invalid(`${where}.to`, 'a service name');
  if (typeof route !== 'string' || !ROUTE_NAME.test(route)) invalid(`${where}.route`, 'a route name of 1 to 128 characters');
  if (!BREAKER_STATES.includes(breaker as CircuitState)) invalid(`${where}.breaker`, `one of ${BREAKER_STATES.join(', ')}`);
  if (latency !== null && !isBins(latency)) invalid(`${where}.latency`, `null or { zero, key, counts } with at most ${MAX_BINS} whole-number counts`);
  if (!isCount(windowMs) || windowMs < 1_000) invalid(`${where}.windowMs`, 'whole milliseconds >= 1000');
  const edge = { to, route, breaker, latency, windowMs } as EdgeReport;
  for (const name of EDGE_COUNTS) {
    const count = value[name];
    if (!isCount(count)) invalid(`${where}.${name}`, 'a whole number >= 0');
    edge[name] = count;
  }
  return edge;
}

function isBins(value: unknown): value is SketchBins {
  if (!isPlainObject(value)) return false;
  const { zero, key, counts } = value;
  return isCount(zero) && Number.isInteger(key) && Array.isArray(counts) && counts.length <= MAX_BINS && counts.every(isCount) && Math.abs(key as number) <= MAX_BIN_KEY && Math.abs((key as number) + counts.length - 1) <= MAX_BIN_KEY;
}

/** A POST /v1/reports body, checked field by field; the first problem is refused with 400 naming where it is. */
export function parseStatsReport(text: string): StatsReport {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Refusal(400, 'malformed', 'request body: not valid JSON');
  }
  if (!isPlainObject(body)) invalid('(document)', 'an object');
  const { service, instance, edges } = body;
  if (typeof service !== 'string' || !CLIENT_IDENTITY.test(service)) invalid('service', 'a service name');
  if (typeof instance !== 'string' || !CLIENT_IDENTITY.test(instance)) invalid('instance', 'an instance id (letters, digits, ".", "_", ":", "-")');
  if (!Array.isArray(edges) || edges.length > MAX_REPORT_EDGES) invalid('edges', `an array of at most ${MAX_REPORT_EDGES} edges`);
  return { service, instance, edges: edges.map((edge, i) => parseEdge(edge, `edges[${i}]`)) };
}

/** The `window` query parameter: a duration from 1s to 1h (default `fallback`). */
export function parseWindow(value: string | null, fallback: number): number {
  if (value === null) return fallback;
  const ms = parseDuration(value);
  if (ms === undefined || ms < 1_000 || ms > 3_600_000) throw new Refusal(400, 'invalid-query', `window=${JSON.stringify(value.slice(0, 40))}: expected a duration from 1s to 1h, e.g. 1m`);
  return ms;
}

/** An optional name filter (`from`, `to`, `route`) from the query. */
export function parseNameFilter(query: URLSearchParams, name: 'from' | 'to' | 'route'): string | undefined {
  const value = query.get(name);
  if (value === null) return undefined;
  if (!ROUTE_NAME.test(value)) throw new Refusal(400, 'invalid-query', `${name}: expected a name of 1 to 128 characters`);
  return value;
}
