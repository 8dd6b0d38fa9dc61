import { EventEmitter, once } from 'node:events';

/** Calls in a loop from `workers` concurrent callers until stopped, counting successes and keeping every failure. */
export function steadyTraffic(call: () => Promise<unknown>, workers = 4) {
  const progress = new EventEmitter();
  const failures: unknown[] = [];
  let ok = 0;
  let running = true;
  const loops = Array.from({ length: workers }, async () => {
    while (running) {
      try {
        await call();
        ok++;
        progress.emit('ok', ok);
      } catch (err) {
        failures.push(err);
      }
    }
  });
  return {
    failures,
    get ok() {
      return ok;
    },
    /** Resolves after `more` further successful calls. */
    async more(more: number): Promise<void> {
      const target = ok + more;
      while (ok < target) await once(progress, 'ok');
    },
    async stop(): Promise<void> {
      running = false;
      await Promise.all(loops);
    },
  };
}
