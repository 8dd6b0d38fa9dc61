export type QueryValue = string | number | boolean;
export type QueryParams = Readonly<Record<string, QueryValue | readonly QueryValue[] | null | undefined>>;

/** Appends `query` to `path`; null and undefined values are left out, arrays repeat the key. */
export function withQuery(path: string, query: QueryParams | undefined): string {
  if (query === undefined) return path;
  let qs = '';
  for (const key in query) {
    const value = query[key];
    if (value === undefined || value === null) continue;
    const name = encodeURIComponent(key);
    for (const item of Array.isArray(value) ? (value as readonly QueryValue[]) : [value as QueryValue]) {
      qs += `${qs ? '&' : ''}${name}=${encodeURIComponent(String(item))}`;
    }
  }
  if (qs === '') return path;
  return `${path}${path.includes('?') ? '&' : '?'}${qs}`;
}
