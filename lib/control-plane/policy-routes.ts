import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseDocument as parseYamlDocument } from 'yaml';
import { isMeshError } from '../errors.ts';
import { authorizeWrite } from './auth.ts';
import { CLIENT_IDENTITY } from './clients.ts';
import type { ClientRegistry } from './clients.ts';
import { readBody } from './body.ts';
import { Refusal, entityTag, sendJson } from './http.ts';
import { buildRevision, checkDepth, hasCurrent, republish } from './revision.ts';
import type { DocumentValidator, Revision } from './revision.ts';
import type { Router } from './router.ts';
import { RevisionConflict, StoreUnavailable } from './store.ts';
import type { RevisionStore } from './store.ts';
import type { WatchHub } from './watch-hub.ts';

export interface PolicyRoutesContext {
  readonly store: RevisionStore;
  readonly hub: WatchHub;
  readonly clients: ClientRegistry;
  readonly adminToken: string | undefined;
  readonly maxBodyBytes: number;
  readonly maxWatchers: number;
  readonly validate: DocumentValidator;
}

const YAML_TYPES = new Set(['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml']);

const etag = (revision: string): string => `"${revision}"`;

function matchesAny(header: string | undefined, revision: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((tag) => tag.trim() === '*' || entityTag(tag) === revision);
}

function decodeUtf8(body: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw new Refusal(400, 'malformed', 'request body: not valid UTF-8');
  }
}

/**
 * Parses a PUT body by its Content-Type: JSON or YAML; without one, or as text/plain (what fetch and
 * curl send for a string), JSON when it starts with "{", else YAML.
 */
function parseDocument(req: IncomingMessage, body: Buffer): unknown {
  const declared = req.headers['content-type']?.split(';')[0]!.trim().toLowerCase();
  const type = declared === 'text/plain' ? undefined : declared;
  const isYaml = type === undefined ? !/^\s*\{/.test(body.toString('latin1', 0, 64)) : YAML_TYPES.has(type);
  if (type !== undefined && !isYaml && type !== 'application/json') {
    throw new Refusal(415, 'unsupported-media-type', `Content-Type ${JSON.stringify(type)}: send application/json or application/yaml`);
  }
  const text = decodeUtf8(body);
  if (text.trim() === '') throw new Refusal(400, 'malformed', 'request body: empty; send a policy document');
  try {
    return isYaml ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    const message = err instanceof RangeError ? 'nested too deeply to parse' : (err as Error).message.split('\n')[0];
    throw new Refusal(400, 'malformed', `request body: not valid ${isYaml ? 'YAML' : 'JSON'}: ${message}`);
  }
}

/** YAML, strictly: a warning (an unknown tag or directive) is an error too, and aliases are capped. */
function parseYaml(text: string): unknown {
  const doc = parseYamlDocument(text, { prettyErrors: true, uniqueKeys: true, logLevel: 'silent' });
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) throw problem;
  return doc.toJS({ maxAliasCount: 50 });
}

/** Validation failures become 400 (nesting) or 422 (schema) with one entry per problem and path. */
function revisionFrom(document: unknown, ctx: PolicyRoutesContext, source: 'api' | 'rollback'): Revision {
  try {
    checkDepth(document);
  } catch (err) {
    throw new Refusal(400, 'too-deep', `request body: ${(err as Error).message}`);
  }
  try {
    return buildRevision(document, 'the request body', source, ctx.validate);
  } catch (err) {
    if (!isMeshError(err)) throw err;
    const problems = err.message.split('\n').slice(1).map((line) => line.trim()).filter(Boolean);
    throw new Refusal(422, 'invalid-policy', err.message.split('\n')[0]!.replace(/:$/, ''), { problems });
  }
}

async function publish(res: ServerResponse, ctx: PolicyRoutesContext, next: Revision, ifMatch: string | undefined): Promise<void> {
  const previous = ctx.store.current().revision;
  let published: Revision;
  try {
    published = await ctx.store.put(next, { ifMatch });
  } catch (err) {
    if (err instanceof StoreUnavailable) throw new Refusal(503, 'store-unavailable', err.message, { headers: { 'retry-after': '1' } });
    if (!(err instanceof RevisionConflict)) throw err;
    throw new Refusal(412, 'conflict', err.message, { headers: { etag: etag(err.current) } });
  }
  sendJson(res, 200, { revision: published.revision, previous, changed: published.revision !== previous }, { etag: etag(published.revision) });
}

export function addPolicyRoutes(router: Router, ctx: PolicyRoutesContext): void {
  router.add('GET', '/v1/policy', (req, res) => {
    const current = ctx.store.current();
    const headers = { etag: etag(current.revision), 'cache-control': 'no-cache' };
    if (matchesAny(req.headers['if-none-match'], current.revision)) {
      res.writeHead(304, headers).end();
      return;
    }
    res.writeHead(200, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(current.body) });
    res.end(current.body);
  });

  router.add('GET', '/v1/policy/watch', (req, res) => {
    // A HEAD (a probe) learns the stream's type and ends; it is not held open as a watcher.
    if (req.method === 'HEAD') return void res.writeHead(200, { 'content-type': 'text/event-stream' }).end();
    ctx.hub.admit(ctx.maxWatchers);
    const service = req.headers['x-meshfetch-service'];
    const instance = req.headers['x-meshfetch-instance'];
    const known = typeof service === 'string' && typeof instance === 'string' && CLIENT_IDENTITY.test(service) && CLIENT_IDENTITY.test(instance);
    const stopWatching = known ? ctx.clients.watching(service, instance) : () => {};
    const last = req.headers['last-event-id'];
    // A client that has the current revision, or a newer one (it moved here from a replica that is ahead), is sent nothing until the next.
    ctx.hub.attach(res, hasCurrent(typeof last === 'string' ? last : undefined, ctx.store.current()), stopWatching);
  });

  router.add('PUT', '/v1/policy', async (req, res) => {
    authorizeWrite(req, ctx.adminToken);
    const document = parseDocument(req, await readBody(req, ctx.maxBodyBytes));
    await publish(res, ctx, revisionFrom(document, ctx, 'api'), entityTag(req.headers['if-match']));
  });

  router.add('POST', '/v1/policy/rollback', async (req, res) => {
    authorizeWrite(req, ctx.adminToken);
    const body = await readBody(req, 4096);
    let wanted: unknown;
    try {
      wanted = body.length === 0 ? undefined : (JSON.parse(decodeUtf8(body)) as { revision?: unknown } | null)?.revision;
    } catch {
      throw new Refusal(400, 'malformed', 'request body: expected JSON such as {"revision": "<revision>"} or nothing');
    }
    if (wanted !== undefined && typeof wanted !== 'string') throw new Refusal(400, 'malformed', 'revision: expected a string');
    const history = ctx.store.history();
    const target = wanted === undefined ? history[1] : history.find((r) => r.revision === wanted);
    if (!target) {
      const kept = history.map((r) => r.revision).join(', ');
      throw wanted === undefined
        ? new Refusal(409, 'no-previous-revision', `nothing to roll back to: history holds only ${kept}`)
        : new Refusal(404, 'unknown-revision', `revision ${JSON.stringify(wanted).slice(0, 80)}: not in history (kept: ${kept})`);
    }
    await publish(res, ctx, republish(target, 'rollback'), entityTag(req.headers['if-match']));
  });

  router.add('GET', '/v1/policy/history', (_req, res) => {
    const current = ctx.store.current().revision;
    const revisions = ctx.store.history().map((r) => ({ revision: r.revision, source: r.source, publishedAt: r.publishedAt, current: r.revision === current }));
    sendJson(res, 200, { revisions });
  });
}
