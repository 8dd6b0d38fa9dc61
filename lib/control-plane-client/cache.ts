import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';

/** The last-known-good document from one control plane, as kept in MESHFETCH_CACHE_DIR. */
export interface CachedPolicy {
  readonly revision: string;
  readonly document: unknown;
}

/** One file per control plane origin, so meshes that share a cache directory but not a control plane do not mix. */
export function cacheFile(dir: string, controlPlane: URL): string {
  return join(dir, `policy-${createHash('sha256').update(controlPlane.origin).digest('hex').slice(0, 12)}.json`);
}

/** The cached document, or undefined when there is none or it cannot be read (the caller validates it). */
export function readCachedPolicy(file: string): CachedPolicy | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const parsed = JSON.parse(text) as Partial<CachedPolicy> | null;
    return typeof parsed?.revision === 'string' && parsed.document !== undefined ? { revision: parsed.revision, document: parsed.document } : undefined;
  } catch {
    return undefined;
  }
}

let temporaries = 0;

/** Writes the cache atomically: a temporary file in the same directory, flushed, then renamed over the old one. */
export async function writeCachedPolicy(file: string, dir: string, policy: CachedPolicy): Promise<void> {
  await mkdir(dir, { recursive: true });
  const temporary = `${file}.${process.pid}.${++temporaries}.tmp`;
  try {
    const handle = await open(temporary, 'w', 0o600);
    try {
      await handle.writeFile(JSON.stringify(policy));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, file);
  } catch (err) {
    await unlink(temporary).catch(() => {});
    throw err;
  }
}
