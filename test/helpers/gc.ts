import { setImmediate as tick } from 'node:timers/promises';

/**
 * Collects garbage until `done()` or a bounded number of rounds; finalizers run between rounds.
 * Fails (never skips) when the process has no gc(): .mocharc.json passes --expose-gc.
 */
export async function collectGarbage(done: () => boolean = () => false, rounds = 20): Promise<void> {
  const gc = globalThis.gc;
  if (typeof gc !== 'function') throw new Error('these tests need global.gc(): run mocha with --expose-gc (.mocharc.json sets it)');
  for (let i = 0; i < rounds && !done(); i++) {
    gc();
    await tick();
  }
}
