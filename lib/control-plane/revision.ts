import { createHash } from 'node:crypto';
import { configError } from '../errors.ts';
import { compilePolicy } from '../policy/compile.ts';
import { isPlainObject } from '../policy/schema.ts';

/** One published policy document. Immutable: a new document is a new Revision. */
export interface Revision {
  /** Content hash of the document (without its `revision` key): the same document is the same revision. */
  readonly revision: string;
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

/**
 * Validates a parsed document and makes it a Revision. Throws MESHFETCH_CONFIG naming each problem
 * with its path (`where` says where the document came from). A `revision` key in the input is
 * replaced: the control plane owns revisions.
 */
export function buildRevision(raw: unknown, where: string, source: RevisionSource, validate: DocumentValidator = validateWithClientRules): Revision {
  checkDepth(raw);
  if (!isPlainObject(raw)) throw configError(`invalid policy from ${where}:\n  (document): expected an object`);
  const { revision: _ignored, ...content } = raw;
  const revision = createHash('sha256').update(canonicalJson(content)).digest('hex').slice(0, 16);
  const document = { ...content, revision };
  validate(document, where);
  return { revision, document, body: JSON.stringify(document), source, publishedAt: new Date().toISOString() };
}

/** The same document re-published (a rollback): same revision, new source and time. */
export function republish(revision: Revision, source: RevisionSource): Revision {
  return { ...revision, source, publishedAt: new Date().toISOString() };
}
