import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

let temporaries = 0;

/**
 * Replaces `path` with `text` so that no reader ever sees half of it: the text goes to a temporary
 * file in the same directory (same filesystem, so the rename is atomic), is flushed to disk, and is
 * renamed over `path`. `beforeRename` runs between the flush and the rename. On failure the
 * temporary file is removed and `path` is as it was.
 */
export async function writeFileAtomically(path: string, text: string, options: { mode?: number; beforeRename?: () => void } = {}): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.${++temporaries}.tmp`);
  try {
    const handle = await open(temporary, 'w', options.mode ?? 0o644);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    options.beforeRename?.();
    await rename(temporary, path);
  } catch (err) {
    await unlink(temporary).catch(() => {});
    throw err;
  }
}
