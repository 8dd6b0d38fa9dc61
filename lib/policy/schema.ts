import { didYouMean } from '../did-you-mean.ts';
import { MAX_TIMER_MS, parseDuration } from './duration.ts';

/**
 * A small schema language for the policy document: one description serves validation (errors name
 * the full path of the bad value) and normalization (durations become milliseconds).
 */
export type Schema =
  | { kind: 'duration'; min?: number }
  | { kind: 'size'; min: number }
  | { kind: 'number'; min: number; max?: number; integer?: boolean }
  | { kind: 'boolean' }
  | { kind: 'string'; pattern?: RegExp; describe?: string; check?: (value: string) => string | undefined }
  | { kind: 'enum'; values: readonly (string | number)[] }
  | { kind: 'status' }
  | { kind: 'either'; options: readonly Schema[]; describe: string }
  | { kind: 'list'; of: Schema; min?: number }
  | { kind: 'one-or-list'; of: Schema }
  | { kind: 'map'; of: Schema; key?: { pattern: RegExp; describe: string } }
  | { kind: 'object'; fields: Record<string, Schema>; nullable?: boolean; required?: readonly string[] };

export const duration = (min = 0): Schema => ({ kind: 'duration', min });
/** Bytes: a whole number, or a string such as "512KiB" or "16MiB". */
export const size = (min: number): Schema => ({ kind: 'size', min });
export const number = (min: number, max?: number, integer = false): Schema => ({ kind: 'number', min, max, integer });
export const integer = (min: number, max?: number): Schema => number(min, max, true);
export const boolean: Schema = { kind: 'boolean' };
export const string = (pattern?: RegExp, describe?: string): Schema => ({ kind: 'string', pattern, describe });
/** A string matching `pattern` that `check` accepts too; `check` says what is wrong with it, or returns undefined. */
export const checkedString = (pattern: RegExp, describe: string, check: (value: string) => string | undefined): Schema => ({
  kind: 'string',
  pattern,
  describe,
  check,
});
export const oneOf = (...values: (string | number)[]): Schema => ({ kind: 'enum', values });
export const either = (describe: string, ...options: Schema[]): Schema => ({ kind: 'either', options, describe });
export const list = (of: Schema, min = 0): Schema => ({ kind: 'list', of, min });
/** One item or a non-empty list of them; normalized to a list, so that errors name the item's own path. */
export const oneOrList = (of: Schema): Schema => ({ kind: 'one-or-list', of });
export const map = (of: Schema, key?: { pattern: RegExp; describe: string }): Schema => ({ kind: 'map', of, key });
export const object = (fields: Record<string, Schema>, opts: { nullable?: boolean; required?: string[] } = {}): Schema => ({
  kind: 'object',
  fields,
  ...opts,
});
export const status: Schema = { kind: 'status' };

export type Problems = string[];

const SIZE = /^(\d+(?:\.\d+)?)(B|KiB|MiB|GiB)$/;
const UNIT_BYTES = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 } as const;

function parseSize(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : undefined;
  const match = typeof value === 'string' ? SIZE.exec(value.trim()) : null;
  return match ? Math.floor(Number(match[1]) * UNIT_BYTES[match[2] as keyof typeof UNIT_BYTES]) : undefined;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'object') return 'an object';
  return String(value);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Checks `value` against `schema` and returns its normalized form. Each problem is pushed as
 * "path: what is wrong"; the returned value is meaningful only when no problem was pushed.
 */
export function normalize(value: unknown, schema: Schema, path: string, problems: Problems): unknown {
  const bad = (expected: string): undefined => {
    problems.push(`${path || '(document)'}: expected ${expected}, got ${describe(value)}`);
    return undefined;
  };
  switch (schema.kind) {
    case 'duration': {
      const ms = parseDuration(value);
      if (ms === undefined) return bad('a duration such as "250ms", "10s" or "1m"');
      if (ms < (schema.min ?? 0)) return bad(`a duration of at least ${schema.min}ms`);
      if (ms > MAX_TIMER_MS) return bad(`a duration of at most ${MAX_TIMER_MS}ms (about 24.8 days, the longest a timer can wait)`);
      return ms;
    }
    case 'size': {
      const bytes = parseSize(value);
      if (bytes === undefined) return bad('a size in bytes, such as 1048576 or "16MiB"');
      if (bytes < schema.min) return bad(`a size of at least ${schema.min} byte(s)`);
      return bytes;
    }
    case 'number': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return bad('a number');
      if (schema.integer && !Number.isInteger(value)) return bad('a whole number');
      if (value < schema.min || (schema.max !== undefined && value > schema.max)) {
        return bad(`a number from ${schema.min}${schema.max === undefined ? ' up' : ` to ${schema.max}`}`);
      }
      return value;
    }
    case 'boolean':
      return typeof value === 'boolean' ? value : bad('true or false');
    case 'string':
      if (typeof value !== 'string' || value.length === 0) return bad(schema.describe ?? 'a non-empty string');
      if (schema.pattern && !schema.pattern.test(value)) return bad(schema.describe ?? `a string matching ${schema.pattern}`);
      if (schema.check) {
        const wrong = schema.check(value);
        if (wrong !== undefined) return bad(`${schema.describe} (${wrong})`);
      }
      return value;
    case 'enum':
      return schema.values.includes(value as string | number) ? value : bad(`one of ${schema.values.join(', ')}`);
    case 'status':
      return Number.isInteger(value) && (value as number) >= 100 && (value as number) <= 599 ? value : bad('an HTTP status code');
    case 'either': {
      for (const option of schema.options) {
        const attempt: Problems = [];
        const result = normalize(value, option, path, attempt);
        if (attempt.length === 0) return result;
      }
      return bad(schema.describe);
    }
    case 'list': {
      if (!Array.isArray(value)) return bad('a list');
      if (value.length < (schema.min ?? 0)) return bad(`a list of at least ${schema.min} item(s)`);
      return value.map((item, i) => normalize(item, schema.of, `${path}[${i}]`, problems));
    }
    case 'one-or-list':
      if (!Array.isArray(value)) return [normalize(value, schema.of, path, problems)];
      return normalize(value, list(schema.of, 1), path, problems);
    case 'map': {
      if (!isPlainObject(value)) return bad('an object');
      const out: Record<string, unknown> = Object.create(null);
      for (const [key, item] of Object.entries(value)) {
        if (schema.key && !schema.key.pattern.test(key)) problems.push(`${path}.${key}: the name must be ${schema.key.describe}`);
        out[key] = normalize(item, schema.of, `${path}.${key}`, problems);
      }
      return out;
    }
    case 'object': {
      if (value === null && schema.nullable) return null;
      if (!isPlainObject(value)) return bad(schema.nullable ? 'an object or null' : 'an object');
      const out: Record<string, unknown> = Object.create(null);
      for (const [key, item] of Object.entries(value)) {
        // Own keys only: "constructor" or "__proto__" must be unknown keys, not Object.prototype's members.
        const field = Object.hasOwn(schema.fields, key) ? schema.fields[key] : undefined;
        const where = path ? `${path}.${key}` : key;
        if (!field) problems.push(`${where}: unknown key${didYouMean(key, Object.keys(schema.fields))}`);
        else if (item !== undefined) out[key] = normalize(item, field, where, problems);
      }
      for (const key of schema.required ?? []) {
        if (!Object.hasOwn(value, key) || value[key] === undefined) problems.push(`${path ? `${path}.` : ''}${key}: required`);
      }
      return out;
    }
  }
}
