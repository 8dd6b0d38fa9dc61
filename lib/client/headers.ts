import type { HeaderRecord } from '../pipeline/types.ts';

/**
 * Any HeadersInit (Headers, pairs, or a record) as a lower-case header record the transports take.
 * Names are own keys only, so a header named "constructor" or "__proto__" is a header like any other
 * (a plain object, not a prototype-less one, which V8 keeps in its slower dictionary mode).
 */
export function toHeaderRecord(init: HeadersInit | Record<string, string | string[] | undefined> | undefined): HeaderRecord {
  const out: HeaderRecord = {};
  if (init === undefined) return out;
  const add = (name: string, value: string | string[]): void => {
    const key = name.toLowerCase();
    const existing = Object.hasOwn(out, key) ? out[key] : undefined;
    const merged = existing === undefined ? value : [existing, value].flat();
    if (key === '__proto__') Object.defineProperty(out, key, { value: merged, enumerable: true, writable: true, configurable: true });
    else out[key] = merged;
  };
  if (init instanceof Headers) {
    init.forEach((value, name) => add(name, value));
  } else if (Array.isArray(init)) {
    for (const [name, value] of init) add(name!, value!);
  } else {
    for (const name of Object.keys(init)) {
      const value = (init as Record<string, string | string[] | undefined>)[name];
      if (value !== undefined) add(name, value);
    }
  }
  return out;
}
