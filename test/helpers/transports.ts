import { gotTransport } from '../../lib/got.ts';
import type { TransportFactory } from '../../lib/transport/types.ts';
import { undiciTransport } from '../../lib/transport/undici.ts';

/** Both transports, by name, for tests that must hold on each. */
export const TRANSPORTS: readonly [string, () => TransportFactory][] = [
  ['undici', () => undiciTransport()],
  ['got', () => gotTransport()],
];
