import type { IncomingMessage, ServerResponse } from 'node:http';
import { Refusal } from './http.ts';

export type RouteHandler = (req: IncomingMessage, res: ServerResponse, query: URLSearchParams) => void | Promise<void>;

/** A table of `METHOD /path` → handler; unknown paths get 404 and known paths with another method 405. */
export class Router {
  readonly #routes = new Map<string, Map<string, RouteHandler>>();

  add(method: string, path: string, handler: RouteHandler): this {
    let methods = this.#routes.get(path);
    if (!methods) this.#routes.set(path, (methods = new Map()));
    methods.set(method, handler);
    if (method === 'GET') methods.set('HEAD', handler);
    return this;
  }

  dispatch(req: IncomingMessage, res: ServerResponse): void | Promise<void> {
    const target = req.url ?? '/';
    const queryAt = target.indexOf('?');
    const path = queryAt === -1 ? target : target.slice(0, queryAt);
    const methods = this.#routes.get(path);
    const method = req.method ?? 'GET';
    if (!methods) {
      throw new Refusal(404, 'unknown-route', `${method} ${clip(path)}: no such route; routes are ${[...this.#routes.keys()].join(', ')}`);
    }
    const handler = methods.get(method);
    if (!handler) {
      const allowed = [...methods.keys()].join(', ');
      throw new Refusal(405, 'method-not-allowed', `${clip(method)} ${path}: method not allowed; allowed: ${allowed}`, { headers: { allow: allowed } });
    }
    return handler(req, res, new URLSearchParams(queryAt === -1 ? '' : target.slice(queryAt + 1)));
  }
}

/** A hostile path or method is named in the message, but not at any length. */
function clip(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text).slice(1, -1);
}
