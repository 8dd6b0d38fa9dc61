import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { configError } from '../errors.ts';
import { compilePolicy } from './compile.ts';
import type { CompiledPolicy } from './compile.ts';
import { lineLocator } from './source-lines.ts';

/**
 * Parses a policy document's text: JSON when it looks like JSON, YAML otherwise. A leading byte-order
 * mark (editors on Windows write one) is not part of the document.
 */
export function parsePolicyText(raw: string, source: string): unknown {
  const text = raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
  try {
    return /^\s*\{/.test(text) ? JSON.parse(text) : parseYaml(text, { prettyErrors: true });
  } catch (err) {
    throw configError(`cannot parse policy from ${source}: ${(err as Error).message}`, err);
  }
}

/** Reads, parses and compiles a policy file (YAML or JSON). Synchronous: createMesh() fails at once. */
export function loadPolicyFile(path: string, origin = path): CompiledPolicy {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw configError(`cannot read policy file ${origin}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, err);
  }
  return compilePolicy(parsePolicyText(text, origin), origin, () => lineLocator(text));
}
