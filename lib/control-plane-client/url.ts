/** `path` under the control plane's base URL, keeping a path prefix (`http://gw/cp/` + `/v1/policy` → `http://gw/cp/v1/policy`). */
export function controlPlaneUrl(base: URL, path: string): URL {
  const url = new URL(base);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${path}`;
  url.search = '';
  url.hash = '';
  return url;
}
