import { createHash } from 'node:crypto';
import { configError } from '../errors.ts';
import { compilePolicy } from '../policy/compile.ts';
import { isPlainObject } from '../policy/schema.ts';

/** One published policy document. Immutable: a new document is a new Revision. */
export interface Revision {
  /**
   * The revision's name, the same on every replica and after a restart. In a store without an order
   * of its own (the file) it is the digest; in one with an order (etcd) it is `<sequence>-<digest
   * prefix>`, so any replica can tell from a name alone whether it is older or newer than its own.
   */
  readonly revision: string;
  /** Content hash of the document (without its `revision` key): the same document has the same digest. */
  readonly digest: string;
  /** Publication order in the store, when it has one (etcd: the key's mod_revision). */
  readonly sequence: number | undefined;
  /** The document as served, its `revision` key stamped with `revision`. */
  readonly document: Readonly<Record<string, unknown>>;
  /** `document` as JSON, serialized once and served as-is to every reader and watcher. */
  readonly body: string;
  readonly source: RevisionSource;
  readonly publishedAt: string;
}

/** How a revision came to be published. */
export type RevisionSource = 'file' | 'file-edit' | 'api' | 'rollback';

/** A hostile document cannot overflow the stack here: the walk is iterative. */
export const MAX_DEPTH = 32;

export function checkDepth(value: unknown, max = MAX_DEPTH): void {
  const pending: Array<{ value: unknown; path: string; depth: number }> = [{ value, path: '', depth: 0 }];
  for (let next = pending.pop(); next; next = pending.pop()) {
    if (typeof next.value !== 'object' || next.value === null) continue;
    if (next.depth >= max) throw configError(`${next.path || '(document)'}: nested deeper than ${max} levels`);
    const isList = Array.isArray(next.value);
    for (const [key, child] of Object.entries(next.value)) {
      const path = isList ? `${next.path}[${key}]` : next.path ? `${next.path}.${key}` : key;
      pending.push({ value: child, path, depth: next.depth + 1 });
    }
  }
}

/** JSON with object keys sorted, so that key order does not make a new revision. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isPlainObject(value)) {
    const keys = Object.keys(value).sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export type DocumentValidator = (document: unknown, source: string) => void;

/** The client's own validation: a document the control plane accepts is one a client of this version can apply. */
export const validateWithClientRules: DocumentValidator = (document, source) => {
  compilePolicy(document, source);
};

/** Where a store that orders its revisions says where this one stands (and when it was published). */
export interface Publication {
  readonly sequence: number;
  readonly publishedAt: string;
}

const ORDERED_NAME = /^(\d{1,15})-[0-9a-f]{8}$/;

/** The sequence in a revision name from an ordered store; undefined for a digest-named revision. */
export function revisionOrder(name: string): number | undefined {
  const match = ORDERED_NAME.exec(name);
  return match ? Number(match[1]) : undefined;
}

/** Whether a client holding `name` already has `current` or something newer (so nothing is to be sent). */
export function hasCurrent(name: string | undefined, current: Revision): boolean {
  if (name === undefined) return false;
  if (name === current.revision) return true;
  const order = revisionOrder(name);
  return order !== undefined && current.sequence !== undefined && order > current.sequence;
}

/**
 * Validates a parsed document and makes it a Revision. Throws MESHFETCH_CONFIG naming each problem
 * with its path (`where` says where the document came from). A `revision` key in the input is
 * replaced: the control plane owns revisions. With `publication` (from a store that orders its
 * revisions) the name carries the sequence; without, the name is the digest.
 */
export function buildRevision(
  raw: unknown,
  where: string,
  source: RevisionSource,
  validate: DocumentValidator = validateWithClientRules,
  publication?: Publication,
): Revision {
  checkDepth(raw);
  if (!isPlainObject(raw)) throw configError(`invalid policy from ${where}:\n  (document): expected an object`);
  const { revision: _ignored, ...content } = raw;
  const digest = createHash('sha256').update(canonicalJson(content)).digest('hex').slice(0, 16);
  const revision = publication ? `${publication.sequence}-${digest.slice(0, 8)}` : digest;
  const document = { ...content, revision };
  validate(document, where);
  const publishedAt = publication?.publishedAt ?? new Date().toISOString();
  return { revision, digest, sequence: publication?.sequence, document, body: JSON.stringify(document), source, publishedAt };
}

/** The document of a revision without its `revision` stamp: what a store keeps. */
export function contentOf(revision: Revision): Record<string, unknown> {
  const { revision: _stamp, ...content } = revision.document;
  return content;
}

/** The same document re-published (a rollback): same revision, new source and time. */
export function republish(revision: Revision, source: RevisionSource): Revision {
  return { ...revision, source, publishedAt: new Date().toISOString() };
}
