import { parseDuration } from '../policy/duration.ts';
import { isPlainObject } from '../policy/schema.ts';
import { OTHER } from '../telemetry/stats.ts';
import { BinReader, MAX_COUNT, checkBins } from '../telemetry/report-bins.ts';
import { EDGE_COUNTS, EDGE_FIELDS, FIRST_COUNT_FIELD, MAX_REPORT_EDGES, REPORT_VERSION } from '../telemetry/report.ts';
import type { CircuitState } from '../events.ts';
import { CLIENT_IDENTITY } from './clients.ts';
import { BREAKER, BREAKER_STATES, COLUMNS, FIRST_COUNT, LATENCY_END, LATENCY_START, WINDOW_MS } from './held-report.ts';
import type { HeldReport } from './held-report.ts';
import { Refusal } from './http.ts';

/** No control, format (bidi overrides, zero-width) or lone surrogate characters: a name is printed in tables and the dashboard. */
const ROUTE_NAME = /^[^\p{Cc}\p{Cf}\p{Cs}]{1,128}$/u;
const LATENCY_FIELD = EDGE_FIELDS.length - 1;

function invalid(where: string, expected: string): never {
  throw new Refusal(400, 'invalid-report', `${where}: expected ${expected}`);
}

const isCount = (value: unknown): value is number => Number.isInteger(value) && (value as number) >= 0 && (value as number) <= MAX_COUNT;

/** Where the latency bytes of a report are decoded: no report's are larger than its body. */
let scratch = Buffer.alloc(0);
const reader = new BinReader();

/**
 * Checks edge `i` and writes its numbers into `figures`; its latency bytes go to `scratch` at
 * `latencyAt`. Returns where the next edge's latency bytes start.
 */
function parseEdge(value: unknown, i: number, out: { to: string[]; route: string[]; figures: Float64Array }, latencyAt: number): number {
  const where = `edges[${i}]`;
  if (!Array.isArray(value) || value.length !== EDGE_FIELDS.length) invalid(where, `an array of ${EDGE_FIELDS.length}: ${EDGE_FIELDS.join(', ')}`);
  const field = (at: number): string => `${where}[${at}] (${EDGE_FIELDS[at]})`;
  const [to, route, breaker, windowMs] = value as unknown[];
  const latency: unknown = value[LATENCY_FIELD];
  if (typeof to !== 'string' || (to !== OTHER && !CLIENT_IDENTITY.test(to))) invalid(field(0), 'a service name');
  if (typeof route !== 'string' || !ROUTE_NAME.test(route)) invalid(field(1), 'a route name of 1 to 128 characters');
  const breakerRank = BREAKER_STATES.indexOf(breaker as CircuitState);
  if (breakerRank < 0) invalid(field(2), `one of ${BREAKER_STATES.join(', ')}`);
  if (!isCount(windowMs) || windowMs < 1_000) invalid(field(3), 'whole milliseconds >= 1000');
  const row = i * COLUMNS;
  for (let c = 0; c < EDGE_COUNTS.length; c++) {
    const count: unknown = value[FIRST_COUNT_FIELD + c];
    if (!isCount(count)) invalid(field(FIRST_COUNT_FIELD + c), 'a whole number >= 0');
    out.figures[row + FIRST_COUNT + c] = count;
  }
  let latencyEnd = latencyAt;
  if (latency !== null) {
    const expected = 'null or a base64 string of bins';
    if (typeof latency !== 'string') invalid(field(LATENCY_FIELD), expected);
    latencyEnd += scratch.write(latency, latencyAt, 'base64');
    // The decoder skips what is not base64, so text that is not decodes to fewer bytes than its length says.
    if (latency.length % 4 !== 0 || latencyEnd - latencyAt !== Buffer.byteLength(latency, 'base64')) invalid(field(LATENCY_FIELD), expected);
    const problem = checkBins(reader, scratch, latencyAt, latencyEnd);
    if (problem !== undefined) invalid(field(LATENCY_FIELD), `bins as varints (${problem})`);
  }
  out.to.push(to);
  out.route.push(route);
  out.figures[row + WINDOW_MS] = windowMs;
  out.figures[row + BREAKER] = breakerRank;
  out.figures[row + LATENCY_START] = latencyAt;
  out.figures[row + LATENCY_END] = latencyEnd;
  return latencyEnd;
}

/** A POST /v1/reports body, checked field by field; the first problem is refused with 400 naming where it is. */
export function parseStatsReport(text: string): HeldReport {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Refusal(400, 'malformed', '(document): not valid JSON');
  }
  if (!isPlainObject(body)) invalid('(document)', 'an object');
  const { v, service, instance, edges } = body;
  if (v !== REPORT_VERSION) invalid('v', `${REPORT_VERSION}, the report format this control plane takes (got ${String(JSON.stringify(v ?? null)).slice(0, 20)})`);
  if (typeof service !== 'string' || !CLIENT_IDENTITY.test(service)) invalid('service', 'a service name');
  if (typeof instance !== 'string' || !CLIENT_IDENTITY.test(instance)) invalid('instance', 'an instance id (letters, digits, ".", "_", ":", "-")');
  if (!Array.isArray(edges) || edges.length > MAX_REPORT_EDGES) invalid('edges', `an array of at most ${MAX_REPORT_EDGES} edges`);
  // Base64 decodes to 3/4 of its length, so the body's length bounds the bytes of all its bins.
  if (scratch.length < text.length) scratch = Buffer.alloc(Math.max(text.length, 2 * scratch.length));
  const out = { to: [] as string[], route: [] as string[], figures: new Float64Array(edges.length * COLUMNS) };
  let latencyEnd = 0;
  // An edge named twice would be counted twice (the instance once): the client never sends that.
  const seen = new Set<string>();
  for (let i = 0; i < edges.length; i++) {
    latencyEnd = parseEdge(edges[i], i, out, latencyEnd);
    const key = `${out.to[i]}\n${out.route[i]}`;
    if (seen.has(key)) invalid(`edges[${i}]`, `an edge not already in the report (${out.to[i]} ${out.route[i]} is edges[${out.to.findIndex((to, j) => to === out.to[i] && out.route[j] === out.route[i])}])`);
    seen.add(key);
  }
  // A copy: what is held must not share the scratch.
  return { service, instance, ...out, latency: new Uint8Array(scratch.subarray(0, latencyEnd)) };
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
