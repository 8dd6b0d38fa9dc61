import { readFileSync } from 'node:fs';
import { configError } from '../errors.ts';
import { MaterialProblem, TlsMaterial } from './material.ts';
import type { TlsPart, TlsPem } from './material.ts';

/** One configured PEM file: its path, and where the path came from (a variable or an option), for messages. */
export interface TlsFile {
  readonly path: string;
  readonly where: string;
}

export type TlsFiles = { -readonly [part in TlsPart]?: TlsFile };

export const TLS_PARTS: readonly TlsPart[] = ['cert', 'key', 'ca'];
const WHAT: Record<TlsPart, string> = { cert: 'the certificate', key: 'the private key', ca: 'the CA bundle' };

/** A configured file that cannot be read; the message names its path, what it is and the errno code. */
export class UnreadableFile extends Error {
  readonly file: TlsFile;
  constructor(file: TlsFile, what: string, cause: unknown) {
    super(`${file.path}: cannot read ${what}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`, { cause });
    this.file = file;
  }
}

/** Reads the configured files; an unreadable one throws UnreadableFile. */
export function readPems(files: TlsFiles): TlsPem {
  const pem: Partial<Record<TlsPart, string>> = {};
  for (const part of TLS_PARTS) {
    const file = files[part];
    if (!file) continue;
    try {
      pem[part] = readFileSync(file.path, 'utf8');
    } catch (err) {
      throw new UnreadableFile(file, WHAT[part], err);
    }
  }
  return pem;
}

/** The file a validation problem is about (the certificate's, when it does not say). */
export function blamedFile(files: TlsFiles, err: unknown): TlsFile {
  const part = err instanceof MaterialProblem ? err.part : 'cert';
  return files[part] ?? files.cert ?? files.ca!;
}

/**
 * Reads and validates the files once (createMesh(), the CLI): a problem throws MESHFETCH_CONFIG
 * naming where the file was set, its path and what is wrong.
 */
export function loadTlsMaterial(files: TlsFiles): TlsMaterial {
  let pem: TlsPem;
  try {
    pem = readPems(files);
  } catch (err) {
    if (!(err instanceof UnreadableFile)) throw err;
    throw configError(`${err.file.where}=${err.message}`, err.cause);
  }
  try {
    return new TlsMaterial(pem);
  } catch (err) {
    const file = blamedFile(files, err);
    throw configError(`${file.where}=${file.path}: ${(err as Error).message}`, err instanceof MaterialProblem ? undefined : err);
  }
}
