import type { HeaderRecord } from '../pipeline/types.ts';

/**
 * Any HeadersInit (Headers, pairs, or a record) as a lower-case header record the transports take.
 * The record has no prototype, so a header named "constructor" or "__proto__" is a header like any other.
 */
export function toHeaderRecord(init: HeadersInit | Record<string, string | string[] | undefined> | undefined): HeaderRecord {
  const out: HeaderRecord = Object.create(null);
  if (init === undefined) return out;
  const add = (name: string, value: string | string[]): void => {
    const key = name.toLowerCase();
    const existing = out[key];
    out[key] = existing === undefined ? value : [existing, value].flat();
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

/** Response headers as a WHATWG Headers object (repeated headers appended in order). */
export function toHeaders(record: Record<string, string | string[] | undefined>): Headers {
  const headers = new Headers();
  for (const name of Object.keys(record)) {
    const value = record[name];
    if (typeof value === 'string') headers.append(name, value);
    else if (value !== undefined) for (const item of value) headers.append(name, item);
  }
  return headers;
}
