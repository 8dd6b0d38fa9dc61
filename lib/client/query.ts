export type QueryValue = string | number | boolean;
export type QueryParams = Readonly<Record<string, QueryValue | readonly (QueryValue | null | undefined)[] | null | undefined>>;

/** A path without its #fragment, which is never sent (fetch drops it too). */
export function withoutFragment(path: string): string {
  const hash = path.indexOf('#');
  return hash === -1 ? path : path.slice(0, hash);
}

function encodeValue(key: string, value: unknown): string {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return encodeURIComponent(String(value));
  }
  throw new TypeError(`query.${key}: expected a string, number or boolean (or a list of them), got ${value === null ? 'null' : typeof value}`);
}

/**
 * Appends `query` to `path` (after dropping any #fragment). null and undefined values, alone or in a
 * list, are left out; a list repeats the key; any other object is refused with a TypeError naming the
 * key, rather than sent as "[object Object]".
 */
export function withQuery(path: string, query: QueryParams | undefined): string {
  const bare = withoutFragment(path);
  if (query === undefined) return bare;
  let qs = '';
  for (const key of Object.keys(query)) {
    const value = query[key];
    if (value === undefined || value === null) continue;
    const name = encodeURIComponent(key);
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item === undefined || item === null) continue;
      qs += `${qs ? '&' : ''}${name}=${encodeValue(key, item)}`;
    }
  }
  if (qs === '') return bare;
  return `${bare}${bare.includes('?') ? '&' : '?'}${qs}`;
}
